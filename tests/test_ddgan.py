"""The denoising diffusion GAN: its schedule against the VP-SDE's integral, the real pairs against their marginal,
the posterior step against Ho et al.'s Eq. 7, T = 1 as a plain GAN, and a tiny run that releases and reloads."""
import math

import pytest
import torch

from t2ilab import zoo
from t2ilab.diffusion.process import q_posterior
from t2ilab.gan import DDGANConfig, DDGenerator, ddgan_sample, ddgan_schedule, posterior_sample, q_pair
from t2ilab.recipes import PRESETS
from t2ilab.train import train

TINY = DDGANConfig(z_dim=4, sentence_dim=6, time_dim=8, generator_width=4, discriminator_width=4, fusion_hidden=8)


def test_schedule_follows_the_integral_of_the_vp_sdes_beta():
    """alpha_bar(t) = exp(-int_0^t beta(u) du), the integral taken numerically (independent of the closed form)."""
    T, lo, hi, eps = 4, 0.1, 20.0, 1e-3
    schedule = ddgan_schedule(T, lo, hi, eps)
    times = [eps + (1 - eps) * i / T for i in range(T + 1)]

    def alpha_bar(t):
        u = torch.linspace(0, t, 10_001, dtype=torch.float64)
        return math.exp(-torch.trapezoid(lo + u * (hi - lo), u).item())

    expected = [alpha_bar(t) / alpha_bar(times[0]) for t in times[1:]]
    assert schedule.alphas_cumprod.tolist() == pytest.approx(expected, rel=1e-6)
    assert schedule.num_steps == T and schedule.alphas_cumprod[-1] < 1e-3  # x_T is (almost) pure noise


def test_real_pairs_have_the_marginals_of_the_forward_process():
    schedule = ddgan_schedule(4)
    x0 = torch.full((20_000, 1, 1, 1), 0.7)
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        t = torch.full((len(x0),), step)
        x_prev, x_t = q_pair(x0, t, schedule, g)
        ab, ab_prev = schedule.alphas_cumprod[step].item(), schedule.alphas_cumprod_prev[step].item()
        assert x_t.mean().item() == pytest.approx(0.7 * ab ** 0.5, abs=0.02)
        assert x_t.var().item() == pytest.approx(1 - ab, abs=0.02 + 0.02 * (1 - ab))
        assert x_prev.mean().item() == pytest.approx(0.7 * ab_prev ** 0.5, abs=0.02)
    assert torch.equal(q_pair(x0[:5], torch.zeros(5, dtype=torch.long), schedule, g)[0], x0[:5])  # x_0 at t = 0


def test_a_posterior_step_matches_eq_7_by_hand():
    schedule = ddgan_schedule(4)
    x0, x_t = torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2)
    t = torch.full((3,), 2)
    b, ab, ab_prev = (float(v[2]) for v in (schedule.betas, schedule.alphas_cumprod, schedule.alphas_cumprod_prev))
    mean = (ab_prev ** 0.5 * b / (1 - ab)) * x0 + ((1 - b) ** 0.5 * (1 - ab_prev) / (1 - ab)) * x_t
    std = (b * (1 - ab_prev) / (1 - ab)) ** 0.5
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(5))
    drawn = posterior_sample(x0, x_t, t, schedule, torch.Generator().manual_seed(5))
    assert torch.allclose(drawn, mean + std * noise, atol=1e-5)
    assert torch.allclose(q_posterior(x0, x_t, torch.zeros(3, dtype=torch.long), schedule).mean, x0, atol=1e-6)


def test_one_step_is_a_plain_conditional_gan_and_t_steps_call_g_t_times():
    torch.manual_seed(0)
    g1 = DDGenerator(TINY.__class__(**{**TINY.__dict__, "num_timesteps": 1})).eval()
    s = torch.randn(2, 6)
    out = ddgan_sample(g1, s, g=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    x_T, z = torch.randn(2, 3, 32, 32, generator=gen), torch.randn(2, 4, generator=gen)
    with torch.no_grad():
        assert torch.allclose(out, g1(x_T, z, torch.zeros(2, dtype=torch.long), s).clamp(-1, 1), atol=1e-6)
    g4, calls = DDGenerator(TINY).eval(), []
    g4.register_forward_hook(lambda *args: calls.append(1))
    images = ddgan_sample(g4, s, g=torch.Generator().manual_seed(3))
    assert len(calls) == 4 and images.shape == (2, 3, 32, 32) and images.abs().max() <= 1


def test_a_tiny_ddgan_trains_both_players_and_its_release_reloads(tmp_path, monkeypatch):
    import shutil

    for suffix in (".json", ".safetensors.xz"):  # the text encoder it reads
        shutil.copy(zoo.weights_dir() / f"clip-birds{suffix}", tmp_path)
    recipe = PRESETS["ddgan-birds32"].tiny()
    job = recipe.build_job(steps=6)
    before = {k: v.clone() for k, v in job.model.state_dict().items()}
    result = train(job.model, job.phases, job.batch_fn, job.config, out_dir=tmp_path / "run", progress=False)
    after = job.model.state_dict()
    for player in ("generator", "discriminator"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(player)), player
    assert any("r1" in h for h in result.history) or job.card_extra["r1_every"] == 2
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    zoo.release("ddgan-tiny", result.ema, {"family": "gan", "role": "generator", "command": "test"})
    loaded = zoo.load("ddgan-tiny")
    draw = recipe.text_to_image(loaded)
    images = draw(["a small bird with a red crown"] * 3, torch.Generator().manual_seed(0))
    again = draw(["a small bird with a red crown"] * 3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 3, 32, 32) and torch.equal(images, again)


def test_extra_discriminator_steps_each_read_their_share_of_the_batch():
    import dataclasses

    recipe = dataclasses.replace(PRESETS["ddgan-birds32"].tiny(), loss="hinge", discriminator_steps=2)
    job = recipe.build_job(steps=2)
    assert [p.name for p in job.phases] == ["discriminator", "discriminator2", "generator"]
    batch = job.batch_fn(1, 0, 1)  # an odd step: no R1 with r1_every = 2
    seen = []
    job.model.discriminator.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    for phase in job.phases[:2]:
        loss, logs = phase.step_fn(job.model, batch)
    assert [len(x) for x in seen] == [recipe.batch_size // 2] * 6  # real, generated, mismatched per share
    assert torch.equal(seen[0], batch[0][0::2]) and torch.equal(seen[3], batch[0][1::2])
    # the hinge terms by hand on the second share's scores
    with torch.no_grad():
        real, fake, mismatched = (job.model.discriminator(x, *args) for x, args in [
            (batch[0][1::2], (batch[1][1::2], batch[2][1::2], batch[3][1::2])),
            (seen[4], (batch[1][1::2], batch[2][1::2], batch[3][1::2])),
            (batch[0][1::2], (batch[1][1::2], batch[2][1::2], batch[4][1::2]))])
    assert logs["d_real"] == pytest.approx(torch.clamp(1 - real, min=0).mean().item(), abs=1e-6)
    assert logs["d_fake"] == pytest.approx(torch.clamp(1 + fake, min=0).mean().item(), abs=1e-6)
    assert logs["d_mismatched"] == pytest.approx(torch.clamp(1 + mismatched, min=0).mean().item(), abs=1e-6)


@pytest.mark.parametrize("change", [{"loss": "wasserstein"}, {"discriminator_steps": 0}, {"discriminator_steps": 3}])
def test_bad_ddgan_options_are_refused(change):
    import dataclasses

    with pytest.raises(ValueError, match=next(iter(change))):
        dataclasses.replace(PRESETS["ddgan-birds32"].tiny(), **change)


def test_minibatch_stddev_against_a_loop_over_groups():
    from t2ilab.gan import minibatch_stddev

    h = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    out = minibatch_stddev(h, group=4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], h)
    for i in range(8):  # sample i is grouped with every sample j = i mod 2
        members = h[[j for j in range(8) if j % 2 == i % 2]]
        expected = members.std(0, unbiased=False).mean()
        assert torch.allclose(out[i, 3], expected.expand(2, 2), atol=1e-4)
    assert minibatch_stddev(h[:3], group=4)[:, 3].std() == 0  # 3 samples: one group of 3
    assert minibatch_stddev(h[:1])[0, 3].abs().max() < 1e-3  # a group of one has no spread


@pytest.mark.parametrize("blocks", ["time", "dfgan"])
def test_both_discriminators_score_pairs_and_read_the_step(blocks):
    import dataclasses

    from t2ilab.gan import DDDiscriminator

    d = DDDiscriminator(dataclasses.replace(TINY, discriminator_blocks=blocks))
    x_prev, x_t = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    s = torch.randn(4, 6)
    scores = d(x_prev, x_t, torch.zeros(4, dtype=torch.long), s)
    assert scores.shape == (4,)
    assert not torch.allclose(scores, d(x_prev, x_t, torch.full((4,), 3), s))
    if blocks == "time":  # the minibatch channel: a sample's score depends on the rest of its group
        batch = torch.cat([x_prev[:1], x_prev[:1], x_prev[:1], x_prev[:1]])
        assert not torch.allclose(d(batch, x_t, torch.zeros(4, dtype=torch.long), s)[0], scores[0])
    with pytest.raises(ValueError, match="discriminator_blocks"):
        dataclasses.replace(TINY, discriminator_blocks="resnet")
