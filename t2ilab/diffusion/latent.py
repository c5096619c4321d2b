"""Diffusion in the latent space of an autoencoder (chapter "Diffusion in a latent space").

After Rombach et al. (2022), "High-Resolution Image Synthesis with Latent Diffusion Models" (LDM): an autoencoder
is trained once; the diffusion model then learns the distribution of its latents instead of the pixels, and
every sample is decoded at the end. Here the autoencoder is the released image tokenizer `vqvae-birds32`:

    z   = s * E(x)                 E: the VQ-VAE encoder's continuous output before quantisation, (B, 64, 8, 8)
    x^  = D(q(z / s))              q: nearest codebook entry, D: the VQ-VAE decoder

As in LDM's VQ-regularised models (their Sec. 3.1 and Appendix G), the diffusion runs on the latents *before*
quantisation and the quantisation layer becomes part of the decoder, so a sample that lands near (not on) a code
is snapped to it. The scale s makes the training latents unit-variance (LDM's scale factor, computed from the data
once and stored with the model): the noise schedules assume data of about that size.

The network is the pixel model's U-Net, unchanged, on an 8x8 grid of 64 channels: 16 times fewer positions than
32x32 pixels, hence the cheaper step. The samplers and guidance in this package work on it unchanged: they are
functions of a model function and a shape.
"""
from __future__ import annotations

import torch
from einops import rearrange

from .unet import UNet, UNetConfig


class LatentUNet(UNet):
    """A U-Net that denoises autoencoder latents (`cfg.in_channels` x `cfg.image_size`^2), with the latents'
    scale factor s as a buffer, so that a released model carries it in its weights file."""

    config_class = UNetConfig

    def __init__(self, cfg: UNetConfig):
        super().__init__(cfg)
        self.register_buffer("latent_scale", torch.ones(()))


@torch.no_grad()
def latent_scale_factor(latents: torch.Tensor) -> float:
    """s = 1 / std of the latents (all entries): the factor that gives them unit variance (LDM, Sec. 4.3.2)."""
    return float(1.0 / latents.float().std())


@torch.no_grad()
def encode_latents(autoencoder, images: torch.Tensor, scale: float | torch.Tensor = 1.0,
                   batch_size: int = 500) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1] -> scaled latents s * E(x): (B, C, h, w), in batches of `batch_size`."""
    device = next(autoencoder.parameters()).device
    parts = [autoencoder.encode_latents(images[i: i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    return torch.cat(parts) * scale


@torch.no_grad()
def decode_latents(autoencoder, latents: torch.Tensor, scale: float | torch.Tensor = 1.0,
                   quantize: bool = True) -> torch.Tensor:
    """Scaled latents (B, C, h, w) -> images (B, 3, H, W) in [-1, 1]: unscale, snap each position to its nearest
    code (`quantize`, the VQ decoder's input) or pass the continuous latent as it is, then decode."""
    z = latents / scale
    if quantize:
        h, w = z.shape[2:]
        idx = autoencoder.quantizer.nearest(rearrange(z, "b d h w -> (b h w) d"))
        z = rearrange(autoencoder.quantizer.codebook[idx], "(b h w) d -> b d h w", h=h, w=w)
    return autoencoder.decoder(z).clamp(-1, 1)
