"""Diffusion: schedules and posterior against closed forms, samplers against an exact noise oracle, guidance
wrappers against their definitions, and a tiny U-Net whose loss falls."""
import math

import pytest
import torch

from t2ilab.diffusion import (TextCondition, UNet, UNetConfig, as_denoiser, cfg_combine, classifier_free, cosine_betas,
                              ddim_sample, ddim_timesteps, ddpm_sample, get_schedule, gradient_guidance,
                              diffusion_loss, linear_betas, make_schedule, noise_from_v, noise_prediction_loss,
                              predict_x0, q_posterior, q_sample, v_target)
from t2ilab.diffusion.pipeline import unconditional_model_fn
from t2ilab.diffusion.process import extract


def test_linear_schedule_endpoints():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    sched = make_schedule(betas)
    assert sched.alphas_cumprod[-1] < 1e-4  # x_T is nearly pure noise
    assert torch.allclose(sched.alphas_cumprod, torch.cumprod(1 - betas, 0))


def test_cosine_schedule_closed_form():
    T, s = 1000, 0.008
    sched = make_schedule(cosine_betas(T))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):
        assert sched.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert cosine_betas(T).max() <= 0.999


def test_posterior_matches_bayes_rule():
    """q(x_{t-1}|x_t,x_0) from the product of two Gaussians, written independently of Eq. 7."""
    sched = get_schedule("linear", 1000)
    x0, xt = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    for step in (1, 37, 999):
        t = torch.full((5,), step)
        beta, ab_prev = sched.betas[step], sched.alphas_cumprod[step - 1]
        precision = 1 / (1 - ab_prev) + (1 - beta) / beta
        mean = (ab_prev.sqrt() * x0 / (1 - ab_prev) + (1 - beta).sqrt() * xt / beta) / precision
        post = q_posterior(x0, xt, t, sched)
        assert torch.allclose(post.mean, mean, atol=1e-10)
        assert torch.allclose(post.variance, (1 / precision).expand_as(post.variance), rtol=1e-10)


def test_q_sample_marginal_and_x0_inversion():
    sched = get_schedule("cosine", 1000)
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    t = torch.full((20000,), 300)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    xt = q_sample(x0, t, noise, sched)
    ab = sched.alphas_cumprod[300].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.05)
    assert torch.allclose(predict_x0(xt, t, noise, sched), x0, atol=1e-5)


def oracle(point, sched):
    """The exact noise prediction for a data distribution that is a single point."""
    def model_fn(x_t, t):
        ab = extract(sched.alphas_cumprod, t, x_t)
        return (x_t - ab.sqrt() * point) / (1 - ab).sqrt()
    return model_fn


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_eta0_with_an_exact_oracle_returns_the_point(name):
    sched = get_schedule(name, 1000)
    point = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    g = torch.Generator().manual_seed(0)
    out = ddim_sample(oracle(point, sched), (4, 3, 8, 8), sched, num_steps=10, eta=0.0, generator=g)
    assert torch.allclose(out, point.expand_as(out), atol=1e-4)


def test_ddpm_with_an_exact_oracle_returns_the_point_and_calls_back():
    sched = get_schedule("linear", 100)
    point = torch.rand(1, 3, 4, 4) - 0.5
    seen = []
    out = ddpm_sample(oracle(point, sched), (2, 3, 4, 4), sched, generator=torch.Generator().manual_seed(1),
                      callback=lambda t, x, x0: seen.append(t))
    assert torch.allclose(out, point.expand_as(out), atol=1e-4)
    assert seen == list(range(99, -1, -1))


def test_ddim_timesteps_respacing():
    assert ddim_timesteps(1000, 1) == [0]
    steps = ddim_timesteps(1000, 25)
    assert len(steps) == 25 and steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)
    with pytest.raises(ValueError, match="num_steps"):
        ddim_timesteps(1000, 0)
    assert ddim_timesteps(1000, 25, t_start=999) == steps
    short = ddim_timesteps(1000, 5, t_start=400)
    assert short == [0, 100, 200, 300, 400]
    with pytest.raises(ValueError, match="t_start"):
        ddim_timesteps(1000, 5, t_start=1000)


def test_sdedit_from_an_intermediate_step_follows_the_oracle():
    """Started at t_start from a noised *other* image, DDIM with the one-point oracle still ends at the point, and
    the first call it makes is at t_start."""
    sched = get_schedule("linear", 1000)
    point, other = torch.full((1, 3, 4, 4), 0.5), torch.full((2, 3, 4, 4), -0.5)
    g = torch.Generator().manual_seed(0)
    x_start = q_sample(other, torch.full((2,), 300), torch.randn(other.shape, generator=g), sched)
    seen = []
    out = ddim_sample(oracle(point, sched), other.shape, sched, num_steps=4, x_T=x_start, t_start=300,
                      callback=lambda t, x, x0: seen.append(t))
    assert seen == [300, 200, 100, 0]
    assert torch.allclose(out, point.expand_as(out), atol=1e-4)
    with pytest.raises(ValueError, match="x_T"):
        ddim_sample(oracle(point, sched), other.shape, sched, num_steps=4, t_start=300)


def tiny_unet(conditional=True):
    torch.manual_seed(0)
    return UNet(UNetConfig(channels=(8, 16, 16), time_dim=32, attention_heads=2, dropout=0.0,
                           word_dim=12 if conditional else None, sentence_dim=8 if conditional else None))


def text_condition(b=2, dropped=False):
    g = torch.Generator().manual_seed(3)
    pad = torch.arange(6)[None].repeat(b, 1) >= 4
    return TextCondition(torch.randn(b, 6, 12, generator=g), torch.randn(b, 8, generator=g), pad,
                         torch.full((b,), dropped))


def test_cfg_wrapper_at_scales_0_1_and_3():
    net = tiny_unet().eval()
    with torch.no_grad():  # make the conditional and unconditional outputs differ
        net.out[-1].weight.normal_(0, 0.1)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 500])
    cond = text_condition()
    with torch.no_grad():
        c, u = net(x, t, cond), net(x, t, cond.as_null())
        assert not torch.allclose(c, u)
        assert torch.allclose(classifier_free(net, cond, cond.as_null(), 1.0)(x, t), c, atol=1e-5)
        assert torch.allclose(classifier_free(net, cond, cond.as_null(), 0.0)(x, t), u, atol=1e-5)
        assert torch.allclose(classifier_free(net, cond, cond.as_null(), 3.0)(x, t), u + 3 * (c - u), atol=1e-4)
    assert torch.equal(cfg_combine(torch.zeros(2), torch.ones(2), 2.5), torch.full((2,), 2.5))


def test_cfg_wrapper_serves_logits_too():
    """The same helper guides a GPT-style function of (tokens, condition) -> logits."""
    logits_fn = lambda tokens, cond: tokens.float()[:, :, None] + cond[:, None, :]
    tokens = torch.tensor([[1, 2]])
    guided = classifier_free(logits_fn, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), 2.0)
    assert torch.equal(guided(tokens), torch.tensor([[[3.0, 1.0], [4.0, 2.0]]]))


def test_gradient_guidance_moves_the_prediction_towards_higher_score():
    sched = get_schedule("linear", 1000)
    target = torch.full((1, 3, 8, 8), 0.5)
    base = lambda x_t, t: torch.zeros_like(x_t)  # predicts no noise
    score = lambda x, t: -((x - target) ** 2).flatten(1).sum(1)  # higher when closer to the target
    guided = gradient_guidance(base, score, scale=0.05, schedule=sched)
    x_t, t = torch.zeros(1, 3, 8, 8), torch.tensor([400])
    x0_plain = predict_x0(x_t, t, base(x_t, t), sched)
    x0_guided = predict_x0(x_t, t, guided(x_t, t), sched)
    assert ((x0_guided - target) ** 2).sum() < ((x0_plain - target) ** 2).sum()
    assert torch.equal(gradient_guidance(base, score, 0.0, sched)(x_t, t), base(x_t, t))


def test_condition_dropout_uses_the_null_condition():
    net = tiny_unet().eval()
    with torch.no_grad():
        net.out[-1].weight.normal_(0, 0.1)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([5, 5])
    a, b = text_condition(dropped=True), text_condition(dropped=True)._replace(words=torch.randn(2, 6, 12))
    with torch.no_grad():
        assert torch.allclose(net(x, t, a), net(x, t, b))  # a dropped caption's content is ignored
    with pytest.raises(ValueError, match="TextCondition"):
        net(x, t)


def test_tiny_unet_training_lowers_the_loss():
    torch.manual_seed(0)
    net = tiny_unet(conditional=False)
    sched = get_schedule("linear", 1000)
    data = torch.rand(16, 3, 32, 32) * 0.2 + torch.linspace(-0.8, 0.8, 32).view(1, 1, 1, 32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    t_fixed = torch.randint(1000, (16,), generator=g)
    noise_fixed = torch.randn(data.shape, generator=g)
    first = noise_prediction_loss(lambda x, t: net(x, t), data, sched, t_fixed, noise_fixed).item()
    for _ in range(60):
        loss = noise_prediction_loss(lambda x, t: net(x, t), data, sched)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = noise_prediction_loss(lambda x, t: net(x, t), data, sched, t_fixed, noise_fixed).item()
    assert last < 0.7 * first


def test_v_parameterisation_round_trips_and_its_loss_weights_x0_errors_by_snr_plus_one():
    sched = get_schedule("linear")
    x0, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 300, 700, 999])
    x_t = q_sample(x0, t, eps, sched)
    v = v_target(x0, eps, t, sched)
    torch.testing.assert_close(noise_from_v(x_t, t, v, sched), eps, atol=1e-5, rtol=1e-5)
    # an x0 error delta is an eps error sqrt(SNR) * delta but a v error sqrt(SNR + 1) * delta (Salimans & Ho, 2022)
    ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    delta = 0.1 * torch.randn_like(x0)
    x0_hat = x0 + delta
    eps_hat = (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()
    v_hat = ab.sqrt() * eps_hat - (1 - ab).sqrt() * x0_hat
    snr = ab / (1 - ab)
    torch.testing.assert_close((v_hat - v).abs(), ((snr + 1).sqrt() * delta).abs(), atol=1e-3, rtol=1e-3)
    loss = diffusion_loss(lambda x, s: v_hat, x0, sched, "v", t=t, noise=eps)
    torch.testing.assert_close(loss, ((snr + 1) * delta ** 2).mean(), atol=1e-4, rtol=1e-3)


def test_ddim_with_an_exact_v_oracle_returns_the_point():
    sched = get_schedule("linear")
    point = torch.tensor([0.5, -0.25, 0.75]).view(1, 3, 1, 1)
    unet = UNet(UNetConfig(channels=(8, 16), prediction="v", schedule="linear"))

    def exact_v(x_t, t, *condition):  # the v of a one-point data distribution
        ab = extract(sched.alphas_cumprod, t, x_t)
        eps = (x_t - ab.sqrt() * point) / (1 - ab).sqrt()
        return ab.sqrt() * eps - (1 - ab).sqrt() * point

    unet.forward = exact_v
    out = ddim_sample(unconditional_model_fn(unet), (2, 3, 4, 4), sched, num_steps=20,
                      generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, point.expand(2, 3, 4, 4), atol=1e-4, rtol=1e-4)


def v_oracle_unet(schedule_name: str, point: torch.Tensor) -> UNet:
    """A U-Net config that says "v on this schedule", whose forward is the exact v of a one-point distribution."""
    unet = UNet(UNetConfig(channels=(8, 16), prediction="v", schedule=schedule_name))
    sched = get_schedule(schedule_name)

    def exact_v(x_t, t, *condition):
        ab = extract(sched.alphas_cumprod, t, x_t)
        eps = (x_t - ab.sqrt() * point) / (1 - ab).sqrt()
        return ab.sqrt() * eps - (1 - ab).sqrt() * point

    unet.forward = exact_v
    return unet


def test_a_denoiser_turns_v_into_the_noise_that_made_x_t_on_its_own_schedule():
    point = torch.tensor([0.5, -0.25, 0.75]).view(1, 3, 1, 1)
    denoiser = as_denoiser(v_oracle_unet("cosine", point))
    assert denoiser.prediction == "eps" and as_denoiser(denoiser) is denoiser
    sched = get_schedule("cosine")
    eps = torch.randn(3, 3, 4, 4)
    t = torch.tensor([10, 500, 990])
    x_t = q_sample(point.expand(3, 3, 4, 4), t, eps, sched)
    torch.testing.assert_close(denoiser(x_t, t), eps, atol=1e-4, rtol=1e-4)  # the exact noise, from Eq. 4
    out = ddim_sample(denoiser, (2, 3, 4, 4), num_steps=20, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, point.expand(2, 3, 4, 4), atol=1e-4, rtol=1e-4)


def test_a_v_network_cannot_reach_a_sampler_unconverted():
    """The guidance chapter's negative-prompt solution once passed the v-predicting U-Net straight to CFG and DDIM."""
    unet = UNet(UNetConfig(channels=(8, 16), word_dim=12, sentence_dim=6, prediction="v", schedule="cosine"))
    cond = TextCondition(torch.randn(2, 3, 12), torch.randn(2, 6), torch.zeros(2, 3, dtype=torch.bool),
                         torch.zeros(2, dtype=torch.bool))
    guided = classifier_free(unet, cond, cond.as_null(), 3.0)
    for sample in (lambda fn: ddim_sample(fn, (2, 3, 8, 8), get_schedule("cosine"), num_steps=2),
                   lambda fn: ddpm_sample(fn, (2, 3, 8, 8), get_schedule("cosine"))):
        with pytest.raises(ValueError, match="outputs 'v'.*as_denoiser"):
            sample(guided)
    with pytest.raises(ValueError, match="outputs 'v'"):
        gradient_guidance(unet, lambda x, t: x.sum((1, 2, 3)), 1.0, get_schedule("cosine"))
    fixed = classifier_free(as_denoiser(unet), cond, cond.as_null(), 3.0)
    assert ddim_sample(fixed, (2, 3, 8, 8), num_steps=2).shape == (2, 3, 8, 8)


def test_a_denoiser_is_not_sampled_on_another_schedule():
    denoiser = as_denoiser(UNet(UNetConfig(channels=(8, 16), prediction="v", schedule="cosine")))
    with pytest.raises(ValueError, match="another noise schedule"):
        ddim_sample(denoiser, (1, 3, 8, 8), get_schedule("linear"), num_steps=2)
    guided = gradient_guidance(denoiser, lambda x, t: x.sum((1, 2, 3)), 1.0)  # takes the denoiser's schedule
    assert guided.schedule is denoiser.schedule
    with pytest.raises(ValueError, match="no noise schedule"):
        ddim_sample(lambda x, t: x, (1, 3, 8, 8), num_steps=2)


def test_guided_sampling_runs_on_the_guided_unets_schedule(monkeypatch):
    """Classifier guidance once sampled the U-Net on the judge's schedule instead of the U-Net's own."""
    from t2ilab import zoo
    from t2ilab.diffusion.noisy import NoisyAttributeClassifier, NoisyClassifierConfig, classifier_score
    from t2ilab.recipes import get_preset

    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=(8, 16), time_dim=32, prediction="v", schedule="cosine"))
    monkeypatch.setattr(zoo, "load", lambda name, device="cpu": unet)
    recipe = get_preset("noisy-classifier-birds32")
    captions = ["a bird with a red crown", "a bird with blue wings"]
    judge = NoisyAttributeClassifier(NoisyClassifierConfig(channels=(8, 16), time_dim=32, schedule="cosine"))
    images = recipe.text_to_image(judge, {"steps": 3, "guidance_scale": 5})(captions, torch.Generator().manual_seed(0))
    by_hand = ddim_sample(gradient_guidance(as_denoiser(unet), classifier_score(judge, captions), 5.0),
                          (2, 3, 32, 32), get_schedule("cosine"), num_steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(images, by_hand, rtol=0, atol=0)
    linear_judge = NoisyAttributeClassifier(NoisyClassifierConfig(channels=(8, 16), time_dim=32, schedule="linear"))
    with pytest.raises(ValueError, match="linear schedule but .* on the cosine one"):
        recipe.text_to_image(linear_judge)
