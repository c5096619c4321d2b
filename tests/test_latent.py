"""Latent diffusion: the autoencoder round trip and its scale factor, min-SNR weights against their formula,
classifier-free guidance on the latent U-Net, a released latent model that loads with its scale and tokenizer."""
import math

import pytest
import torch

from t2ilab import zoo
from t2ilab.autoregressive import VQVAE
from t2ilab.diffusion import get_schedule
from t2ilab.diffusion.latent import LatentUNet, LatentUNetConfig, decode_latents, encode_latents, fit_latent_map
from t2ilab.diffusion.pipeline import text_model_fn
from t2ilab.diffusion.process import diffusion_loss, min_snr_weights
from t2ilab.diffusion.unet import TextCondition
from t2ilab.recipes.image_tokenizer import TINY_TOKENIZER
from t2ilab.recipes import PRESETS


@pytest.fixture(scope="module")
def vqvae():
    torch.manual_seed(0)
    return VQVAE(TINY_TOKENIZER).eval()


def test_latent_round_trip_shapes_scale_and_the_tokenizers_own_path(vqvae):
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    raw = encode_latents(vqvae, images, batch_size=4)  # two batches
    assert raw.shape == (6, 8, 8, 8)
    # all components, one shared scale: LDM's scale factor, 1 / std of every latent entry after centring
    full = fit_latent_map(raw, 8, whiten=False)
    y = full.forward(raw)
    assert y.shape == raw.shape and y.std().item() == pytest.approx(1.0, rel=1e-3)
    assert torch.allclose(full.inverse(y), raw, atol=1e-4)  # orthonormal basis: an exact round trip
    # fewer, whitened components: unit variance per channel, and the best rank-k reconstruction (PCA)
    small = fit_latent_map(raw, 3)
    y = small.forward(raw)
    assert y.shape == (6, 3, 8, 8)
    assert torch.allclose(y.transpose(0, 1).flatten(1).std(1), torch.ones(3), atol=1e-3)
    flat = raw.permute(0, 2, 3, 1).reshape(-1, 8).double()
    centred = flat - flat.mean(0)
    u, s, vh = torch.linalg.svd(centred, full_matrices=False)
    best = (u[:, :3] * s[:3]) @ vh[:3] + flat.mean(0)  # Eckart-Young: the best rank-3 approximation
    assert torch.allclose(small.inverse(y).permute(0, 2, 3, 1).reshape(-1, 8).double(), best, atol=1e-4)
    assert torch.allclose(encode_latents(vqvae, images, small), y, atol=1e-5)
    # quantised decoding is the tokenizer's own encode -> decode; continuous decoding skips the codebook
    expected = vqvae.decode(vqvae.encode(images)).clamp(-1, 1)
    assert torch.allclose(decode_latents(vqvae, full.forward(raw), full, quantize=True), expected, atol=1e-4)
    with torch.no_grad():
        direct = vqvae.decoder(raw).clamp(-1, 1)
    assert torch.allclose(decode_latents(vqvae, raw), direct, atol=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_weights_match_their_formula(prediction):
    schedule, gamma = get_schedule("cosine"), 5.0
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # cosine alpha_bar, closed form
    t = torch.tensor([0, 100, 300, 500, 800, 900])  # beta clipping bends the last steps
    weights = min_snr_weights(schedule, t, gamma, prediction)
    for i, step in enumerate(t.tolist()):
        ab = f(step + 1) / f(0)
        snr = ab / (1 - ab)
        expected = min(snr, gamma) / (snr if prediction == "eps" else snr + 1)
        assert weights[i].item() == pytest.approx(expected, rel=1e-5)
    assert weights[0] < weights[-1] if prediction == "eps" else True  # clean steps are down-weighted


def test_min_snr_loss_is_the_weighted_mean_of_per_example_errors():
    schedule = get_schedule("cosine")
    x0, noise = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([5, 200, 600, 990])
    model_fn = lambda x_t, s: 0.5 * x_t  # any fixed function
    plain = diffusion_loss(model_fn, x0, schedule, "v", t=t, noise=noise)
    weighted = diffusion_loss(model_fn, x0, schedule, "v", t=t, noise=noise, min_snr_gamma=5.0)
    ab = schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    per_example = (0.5 * x_t - (ab.sqrt() * noise - (1 - ab).sqrt() * x0)).pow(2).mean((1, 2, 3))
    assert plain.item() == pytest.approx(per_example.mean().item(), rel=1e-5)
    w = min_snr_weights(schedule, t, 5.0, "v")
    assert weighted.item() == pytest.approx((w * per_example).mean().item(), rel=1e-5)
    huge = diffusion_loss(model_fn, x0, schedule, "eps", t=t, noise=noise, min_snr_gamma=1e12)
    assert huge.item() == pytest.approx(diffusion_loss(model_fn, x0, schedule, "eps", t=t, noise=noise).item(),
                                        rel=1e-5)  # gamma above every SNR: weights 1 for eps


def _latent_unet():
    recipe = PRESETS["ldm-text-birds32"].tiny()
    cfg = LatentUNetConfig(**{**recipe.model_config.__dict__, "in_channels": 8, "image_size": 8})
    torch.manual_seed(0)
    unet = LatentUNet(cfg).eval()
    for p in unet.parameters():  # a non-trivial network: the zero-initialised output layer would hide everything
        p.data.normal_(0, 0.2)
    return unet


def test_latent_cfg_at_scale_1_is_the_conditional_and_at_0_the_unconditional_prediction():
    unet = _latent_unet()
    cfg = unet.cfg
    text = TextCondition(torch.randn(2, 5, cfg.word_dim), torch.nn.functional.normalize(torch.randn(2, cfg.sentence_dim)),
                         torch.zeros(2, 5, dtype=torch.bool), torch.zeros(2, dtype=torch.bool))
    z, t = torch.randn(2, 8, 8, 8), torch.tensor([10, 700])
    with torch.no_grad():
        conditional = text_model_fn(unet, text, 1.0)(z, t)
        unconditional = text_model_fn(unet, text, 0.0)(z, t)
        guided = text_model_fn(unet, text, 3.0)(z, t)
    from t2ilab.diffusion import as_denoiser

    with torch.no_grad():
        assert torch.allclose(conditional, as_denoiser(unet)(z, t, text), atol=1e-6)
        assert torch.allclose(unconditional, as_denoiser(unet)(z, t, text.as_null()), atol=1e-6)
    assert not torch.allclose(conditional, unconditional)
    assert torch.allclose(guided, unconditional + 3 * (conditional - unconditional), atol=1e-5)


def test_a_released_latent_model_loads_with_its_scale_and_tokenizer(tmp_path, monkeypatch):
    import shutil

    for suffix in (".json", ".safetensors.xz"):  # the text encoder it reads
        shutil.copy(zoo.weights_dir() / f"clip-birds{suffix}", tmp_path)
    monkeypatch.setenv("T2ILAB_ZOO", str(tmp_path))
    recipe = PRESETS["ldm-text-birds32"].tiny()
    job = recipe.build_job(steps=1)
    assert job.model.latent_scale.tolist() == pytest.approx(job.card_extra["latent_scale"], rel=1e-4)
    assert job.model.latent_basis.shape == (4, 8)  # 4 components of the tiny tokenizer's 8 channels
    zoo.release("ldm-tiny", job.model, {"family": "diffusion", "role": "generator", "command": "test",
                                        **job.card_extra})
    loaded = zoo.load("ldm-tiny")
    assert isinstance(loaded, LatentUNet)
    for name in ("latent_mean", "latent_basis", "latent_scale"):  # stored in fp16
        assert torch.allclose(getattr(loaded, name), getattr(job.model, name), rtol=1e-3, atol=1e-3)
    assert loaded.vqvae_record == zoo.load_card("ldm-tiny")["vqvae"]
    images = recipe.text_to_image(loaded, {"steps": 2})(["a small bird"], torch.Generator().manual_seed(0))
    assert images.shape == (1, 3, 32, 32)
