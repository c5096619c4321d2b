"""GANs: the losses and penalties against hand-computed cases, the matching-aware discriminator, shapes and
ranges, truncation, and a tiny training that moves both players."""
import pytest
import torch

from t2ilab.gan import (DFDiscriminator, DFGANConfig, DFGenerator, diff_augment, downsample_to, hinge_discriminator,
                        hinge_generator, matching_aware_gradient_penalty, nonsaturating_discriminator,
                        nonsaturating_generator, r1_penalty, truncated_noise)
from t2ilab.recipes import PRESETS
from t2ilab.train import train

TINY = DFGANConfig(z_dim=8, sentence_dim=6, generator_width=4, discriminator_width=4, fusion_hidden=8)


def test_hinge_and_nonsaturating_losses_match_their_formulas():
    real, fake, mis = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.3]), torch.tensor([0.0, -0.5])
    terms = hinge_discriminator(real, fake, mis)
    assert terms.real.item() == pytest.approx((0 + 0.5) / 2)
    assert terms.fake.item() == pytest.approx((0 + 1.3) / 2)
    assert terms.mismatched.item() == pytest.approx((1 + 0.5) / 2)
    assert terms.total.item() == pytest.approx(0.25 + (0.65 + 0.75) / 2)
    assert hinge_generator(fake).item() == pytest.approx(0.85)
    softplus = lambda v: torch.log1p(torch.exp(torch.tensor(v))).item()  # noqa: E731
    ns = nonsaturating_discriminator(real, fake, mis)
    assert ns.real.item() == pytest.approx((softplus(-2.0) + softplus(-0.5)) / 2, rel=1e-6)
    assert ns.fake.item() == pytest.approx((softplus(-2.0) + softplus(0.3)) / 2, rel=1e-6)
    assert nonsaturating_generator(fake).item() == pytest.approx((softplus(2.0) + softplus(-0.3)) / 2, rel=1e-6)


def test_ma_gp_and_r1_against_hand_computed_gradients():
    torch.manual_seed(0)
    a, b = torch.randn(12), torch.randn(5)
    critic = lambda x, s: (x.flatten(1) @ a) * (s @ b)  # noqa: E731  D(x, s) = (a.x)(b.s)
    x, s = torch.randn(3, 3, 2, 2), torch.randn(3, 5)
    # grad_x D = (b.s) a, grad_s D = (a.x) b
    ax, bs = x.flatten(1) @ a, s @ b
    norms = torch.sqrt(bs ** 2 * a.pow(2).sum() + ax ** 2 * b.pow(2).sum())
    assert matching_aware_gradient_penalty(critic, x, s, k=2, p=6).item() == pytest.approx(
        (2 * norms ** 6).mean().item(), rel=1e-5)
    assert matching_aware_gradient_penalty(critic, x, s, k=1, p=2).item() == pytest.approx(
        (norms ** 2).mean().item(), rel=1e-5)
    c = torch.randn(3, 2, 2)
    quadratic = lambda x: (c * x ** 2).flatten(1).sum(1)  # noqa: E731  grad = 2 c x
    expected = 0.5 * 10.0 * (2 * c * x).flatten(1).pow(2).sum(1).mean()
    assert r1_penalty(quadratic, x, gamma=10.0).item() == pytest.approx(expected.item(), rel=1e-5)
    # the penalty is differentiable in the critic's parameters (it is minimised through them)
    w = torch.ones(12, requires_grad=True)
    penalty = matching_aware_gradient_penalty(lambda x, s: (x.flatten(1) @ w) * (s @ b), x, s)
    penalty.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_generator_and_discriminator_shapes_and_ranges():
    for size in (16, 32, 64):
        cfg = DFGANConfig(**{**TINY.__dict__, "image_size": size})
        g, d = DFGenerator(cfg), DFDiscriminator(cfg)
        images = g(torch.randn(5, 8) * 10, torch.randn(5, 6) * 10)
        assert images.shape == (5, 3, size, size) and images.abs().max() <= 1
        assert d(images, torch.randn(5, 6)).shape == (5,)
    with pytest.raises(ValueError, match="4 times a power of two"):
        DFGenerator(DFGANConfig(image_size=48))


def test_fusion_starts_as_identity_and_then_follows_the_sentence():
    torch.manual_seed(0)
    g = DFGenerator(TINY)
    z = torch.randn(2, 8)
    s1, s2 = torch.randn(2, 6), torch.randn(2, 6)
    assert torch.equal(g(z, s1), g(z, s2))  # gamma = beta = 0 at initialisation: the text cannot act yet
    for p in g.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(g(z, s1), g(z, s2))


def test_truncation_zero_gives_one_image_per_caption_and_is_checked():
    recipe = PRESETS["dfgan-birds32"].tiny()
    model = recipe.build_job(steps=1).model.generator.eval()
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    draw = recipe.text_to_image(model, {"truncation": 0})
    images = draw(["a small bird with a red crown"] * 4, torch.Generator().manual_seed(0))
    assert torch.allclose(images, images[:1].expand_as(images))
    varied = recipe.text_to_image(model, {"truncation": 1})(["a small bird with a red crown"] * 4,
                                                            torch.Generator().manual_seed(0))
    assert not torch.allclose(varied, varied[:1].expand_as(varied))
    z = truncated_noise(1000, 8, 0.5, torch.Generator().manual_seed(0))
    assert z.std().item() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(ValueError, match="truncation must be between 0 and 1"):
        recipe.options({"truncation": "1.5"})


def test_the_discriminator_loss_sees_mismatched_captions():
    recipe = PRESETS["dfgan-birds32"].tiny()
    job = recipe.build_job(steps=1)
    discriminator_step = job.phases[0].step_fn
    batch = job.batch_fn(1, 0, 1)  # step 1: no penalty on this step (gp_every 2)
    torch.manual_seed(0)
    for p in job.model.discriminator.parameters():  # a discriminator that is not still at its initial zeros
        p.data.add_(0.2 * torch.randn_like(p))
    loss, logs = discriminator_step(job.model, batch)
    shuffled = list(batch)
    shuffled[2] = torch.randn_like(batch[2]) * 3  # other mismatched captions
    loss_shuffled, logs_shuffled = discriminator_step(job.model, tuple(shuffled))
    assert logs["d_real"] == pytest.approx(logs_shuffled["d_real"])
    assert logs["d_mismatched"] != pytest.approx(logs_shuffled["d_mismatched"])
    assert loss.item() != pytest.approx(loss_shuffled.item())
    assert "ma_gp" in discriminator_step(job.model, job.batch_fn(2, 0, 1))[1]  # every 2nd step


def test_diffaugment_translates_and_cuts_out_and_is_differentiable():
    x = (torch.rand(4, 3, 16, 16) + 0.5).requires_grad_()  # no zeros in the input
    g = torch.Generator().manual_seed(0)
    out = diff_augment(x, g)
    assert out.shape == x.shape
    zeros = (out == 0).all(1).flatten(1).float().mean(1)
    assert (zeros >= 0.2).all()  # the cut-out square (8x8 of 16x16 = 25%, less where it leaves the image)
    assert torch.equal(diff_augment(x, torch.Generator().manual_seed(1), shift=0, cutout=0), x)
    out.sum().backward()
    assert x.grad is not None
    nonzero = out[out != 0].detach()
    assert torch.isin(nonzero, x.detach()).all()  # pixels are moved, never blended


def test_a_tiny_training_moves_both_players_and_releases_the_generators_ema(tmp_path):
    recipe = PRESETS["dfgan-birds32"].tiny()
    job = recipe.build_job(steps=30)
    before = {k: v.clone() for k, v in job.model.state_dict().items()}
    result = train(job.model, job.phases, job.batch_fn, job.config, out_dir=tmp_path, progress=False)
    after = job.model.state_dict()
    for player in ("generator", "discriminator"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(player)), player
    d_losses = [h["discriminator_loss"] for h in result.history]
    g_losses = [h["generator_loss"] for h in result.history]
    assert len(set(d_losses)) > 1 and len(set(g_losses)) > 1
    assert isinstance(result.ema, DFGenerator)


# --------------------------------------------------------------------------------------------------------------
# StackGAN++
# --------------------------------------------------------------------------------------------------------------

def test_conditioning_augmentation_kl_matches_its_closed_form():
    from t2ilab.gan import ConditioningAugmentation, kl_to_standard_normal

    mu, logvar = torch.tensor([[0.5, -1.0], [0.0, 2.0]]), torch.tensor([[0.0, -0.5], [1.0, 0.3]])
    by_hand = 0.0
    for m_row, lv_row in zip(mu.tolist(), logvar.tolist()):
        by_hand += sum(0.5 * (m ** 2 + torch.tensor(lv).exp().item() - 1 - lv) for m, lv in zip(m_row, lv_row))
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(by_hand / 2, rel=1e-6)
    p = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    q = torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2))
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(
        torch.distributions.kl_divergence(p, q).sum(1).mean().item(), rel=1e-6)
    ca = ConditioningAugmentation(6, 4)
    c, m, lv = ca(torch.randn(3, 6), noise=torch.zeros(3, 4))
    assert torch.equal(c, m) and m.shape == lv.shape == (3, 4)  # zero noise: the mean itself


def test_the_tree_draws_each_branch_at_its_size():
    from t2ilab.gan import StackGANConfig, StackGenerator

    cfg = StackGANConfig(z_dim=8, sentence_dim=6, condition_dim=4, generator_width=2, discriminator_width=4)
    g = StackGenerator(cfg).eval()
    out = g(torch.randn(3, 8), torch.randn(3, 6))
    assert [im.shape[-1] for im in out.images] == [16, 32, 64]
    for im in out.images:
        assert im.shape[:2] == (3, 3) and im.abs().max() <= 1
    recipe = PRESETS["stackgan-birds64"].tiny()
    job = recipe.build_job(steps=1)
    logs = job.phases[0].step_fn(job.model, job.batch_fn(0, 0, 1))[1]
    assert {"d16", "d32", "d64"} <= set(logs)  # one discriminator per branch, trained jointly
    logs = job.phases[1].step_fn(job.model, job.batch_fn(0, 0, 1))[1]
    assert {"g16", "g32", "g64", "kl"} <= set(logs)


def test_stackgan_lazy_r1_adds_every_branchs_real_gradient_norm_on_its_steps_only():
    gamma, every = 0.3, 2
    plain = PRESETS["stackgan-birds64"].tiny()
    lever = plain.variant({"r1_gamma": gamma, "r1_every": every})
    torch.manual_seed(0)
    job = lever.build_job(steps=2)
    batch = job.batch_fn(0, 0, 1)
    assert bool(batch[-1]) and not bool(job.batch_fn(1, 0, 1)[-1])  # every 2nd step only
    loss, logs = job.phases[0].step_fn(job.model, batch)
    unregularised, _ = job.phases[0].step_fn(job.model, (*batch[:-1], torch.tensor(False)))
    # by hand: gamma / 2 * E ||d/dx (u(x) + conditional(h(x), mu))||^2 at each branch's real images
    x, s, _, _, ca_noise, _ = batch
    mu = job.model.generator.ca(s, ca_noise)[1].detach()
    expected = 0.0
    for d, size in zip(job.model.discriminator.branches, (16, 32, 64)):
        real = downsample_to(x, size).detach().requires_grad_(True)
        u, h = d(real)
        (grad,) = torch.autograd.grad((u + d.conditional(h, mu)).sum(), real)
        expected += gamma / 2 * grad.flatten(1).pow(2).sum(1).mean().item()
        assert f"r1_{size}" in logs
    assert loss.item() - unregularised.item() == pytest.approx(every * expected, rel=1e-4)
    assert job.card_extra["r1_gamma"] == gamma
    assert "r1_gamma" not in plain.build_job(steps=1).card_extra  # off: the published recipe, as released
    with pytest.raises(ValueError, match="r1_gamma"):
        plain.variant({"r1_gamma": -1})


def test_a_gan_run_saves_a_fixed_grid_of_samples_at_each_checkpoint_and_resumes_exactly(tmp_path):
    recipe = PRESETS["dfgan-birds32"].tiny()
    job = recipe.build_job(steps=6, checkpoint_every=3)
    whole = train(job.model, job.phases, job.batch_fn, job.config, out_dir=tmp_path / "a", progress=False,
                  on_checkpoint=job.monitor)
    assert sorted(p.name for p in (tmp_path / "a" / "samples").iterdir()) == ["step000003.png", "step000006.png"]
    job = recipe.build_job(steps=3, checkpoint_every=3)
    train(job.model, job.phases, job.batch_fn, job.config, out_dir=tmp_path / "b", progress=False,
          on_checkpoint=job.monitor)
    job = recipe.build_job(steps=6, checkpoint_every=3)
    resumed = train(job.model, job.phases, job.batch_fn, job.config, out_dir=tmp_path / "b", progress=False,
                    on_checkpoint=job.monitor)
    for a, b in zip(whole.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)  # the monitor draws no global random numbers


def test_caption_pairs_gives_each_image_its_own_caption_and_the_next_images_as_the_mismatched_one():
    from t2ilab.gan.training import caption_pairs

    n, per_image = 12, 5
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    sentences = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(per_image), indexing="ij"), -1).float()
    x, s, mismatched = caption_pairs(images, sentences, 8, torch.Generator().manual_seed(0))
    owner = s[:, 0].long()  # feature 0 of a sentence is its image's index
    assert torch.equal(((x[:, 0, 0, 0] + 1) * 127.5).round().long(), owner)  # image and caption belong together
    assert torch.equal(mismatched[:, 0].long(), owner.roll(1))  # the mismatched caption is the next image's
    assert ((s[:, 1] >= 0) & (s[:, 1] < per_image)).all()


def test_the_dfgan_steps_are_the_hinge_losses_of_the_pair():
    from t2ilab.gan import DFGAN
    from t2ilab.gan.training import dfgan_discriminator_loss, dfgan_generator_loss

    torch.manual_seed(0)
    gan = DFGAN(DFGANConfig(image_size=32, z_dim=8, sentence_dim=16, generator_width=4, discriminator_width=4,
                            fusion_hidden=8))
    x, s, s_bad, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, 16), torch.randn(4, 16), torch.randn(4, 8)
    batch = (x, s, s_bad, z, torch.tensor(7), torch.tensor(False))
    d = gan.discriminator
    fake = gan.generator(z, s)
    loss, logs = dfgan_generator_loss(gan, batch)
    assert torch.allclose(loss, -d(fake, s).mean()) and logs["g_loss"] == pytest.approx(loss.item())
    loss, logs = dfgan_discriminator_loss(gan, batch, gp_every=4, gp_weight=2.0, gp_power=6.0)
    expected = (torch.relu(1 - d(x, s)).mean() + 0.5 * torch.relu(1 + d(fake.detach(), s)).mean()
                + 0.5 * torch.relu(1 + d(x, s_bad)).mean())
    assert torch.allclose(loss, expected, atol=1e-6) and "ma_gp" not in logs  # not a regularised step
