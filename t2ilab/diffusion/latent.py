"""Diffusion in the latent space of an autoencoder (chapter "Diffusion in a latent space").

After Rombach et al. (2022), "High-Resolution Image Synthesis with Latent Diffusion Models" (LDM): an autoencoder
is trained once; the diffusion model then learns the distribution of its latents instead of the pixels, and
every sample is decoded at the end. Here the autoencoder is the released image tokenizer `vqvae-birds32`, whose
encoder gives a 64-channel 8x8 grid before quantisation:

    z = E(x)                       (B, 64, 8, 8), the VQ-VAE encoder's continuous output
    y = ((z - m) V^T) / s          per position: the top-k principal directions V (k, 64) of the training
                                   latents, each coordinate divided by its standard deviation s (k,)
    x^ = D(y s V + m)              back to the 64 channels, then the VQ-VAE decoder (optionally after snapping
                                   each position to its nearest code, the decoder's training input)

The map in the middle is a linear autoencoder fitted once to the data (PCA). The encoder's 64 channels carry
little more than 8 directions of variance, and diffusing in those k coordinates, each scaled to unit variance,
gives the noise schedule data of the size it assumes (LDM's scale factor, per coordinate). With k = 64 and a single
scale instead of one per coordinate, `LatentMap` is LDM's own recipe. As in LDM's VQ-regularised models (their
Sec. 3.1), the diffusion runs before quantisation; whether the decoder quantises is a sampling option.

The network is the pixel model's U-Net, unchanged, on an 8x8 grid of k channels: 16 times fewer positions than
32x32 pixels, hence the cheaper step. The samplers and guidance in this package work on it unchanged: they are
functions of a model function and a shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from einops import rearrange, einsum

from ..registry import register_model
from .unet import UNet, UNetConfig


class LatentMap(NamedTuple):
    """The affine map between autoencoder latents (C channels) and diffusion latents (k channels)."""

    mean: torch.Tensor  # (C,)
    basis: torch.Tensor  # (k, C), orthonormal rows
    scale: torch.Tensor  # (k,), the standard deviation of each coordinate (or one shared value, repeated)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, k, h, w), about unit variance per channel."""
        y = einsum(z - self.mean.view(1, -1, 1, 1), self.basis, "b c h w, k c -> b k h w")
        return y / self.scale.view(1, -1, 1, 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(B, k, h, w) -> (B, C, h, w): the point of the k-dimensional subspace (exact when k = C)."""
        z = einsum(y * self.scale.view(1, -1, 1, 1), self.basis, "b k h w, k c -> b c h w")
        return z + self.mean.view(1, -1, 1, 1)


@torch.no_grad()
def fit_latent_map(latents: torch.Tensor, components: int, whiten: bool = True) -> LatentMap:
    """PCA of the per-position latent vectors (N, C, h, w): the mean, the top `components` directions, and the
    standard deviation of each coordinate (`whiten`) or one scale for all of them, the overall standard deviation
    of the coordinates (LDM's scale factor)."""
    flat = rearrange(latents.double(), "n c h w -> (n h w) c")
    if not 1 <= components <= flat.shape[1]:
        raise ValueError(f"components must be between 1 and {flat.shape[1]}, got {components}")
    mean = flat.mean(0)
    _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    basis = vh[:components]
    coords = (flat - mean) @ basis.T
    scale = coords.std(0) if whiten else coords.std().expand(components).clone()
    return LatentMap(mean.float(), basis.float(), scale.float())


@dataclass
class LatentUNetConfig(UNetConfig):
    autoencoder_channels: int = 64  # C of the autoencoder's latents; in_channels is the k coordinates diffused


@register_model
class LatentUNet(UNet):
    """A U-Net that denoises k latent coordinates on the autoencoder's grid, with the fitted `LatentMap` as
    buffers, so that a released model carries the map in its weights file."""

    config_class = LatentUNetConfig

    def restore_card_data(self, card: dict) -> None:
        """What its card stores beside the weights (called by `zoo.load`): the image tokenizer it was trained on,
        name and sha256, checked when it is used."""
        if "vqvae" in card:
            self.vqvae_record = card["vqvae"]

    def __init__(self, cfg: LatentUNetConfig):
        super().__init__(cfg)
        k, c = cfg.in_channels, cfg.autoencoder_channels
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_basis", torch.eye(k, c))
        self.register_buffer("latent_scale", torch.ones(k))

    @property
    def latent_map(self) -> LatentMap:
        return LatentMap(self.latent_mean, self.latent_basis, self.latent_scale)

    def set_latent_map(self, latent_map: LatentMap) -> None:
        for buffer, value in zip((self.latent_mean, self.latent_basis, self.latent_scale), latent_map):
            buffer.copy_(value)


@torch.no_grad()
def encode_latents(autoencoder, images: torch.Tensor, latent_map: LatentMap | None = None,
                   batch_size: int = 500) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1] -> the autoencoder's latents E(x) (B, C, h, w), or with `latent_map` the
    diffusion latents (B, k, h, w); in batches of `batch_size`."""
    device = next(autoencoder.parameters()).device
    z = torch.cat([autoencoder.encode_latents(images[i: i + batch_size].to(device))
                   for i in range(0, len(images), batch_size)])
    return z if latent_map is None else latent_map.forward(z)


@torch.no_grad()
def decode_latents(autoencoder, latents: torch.Tensor, latent_map: LatentMap | None = None,
                   quantize: bool = False) -> torch.Tensor:
    """Diffusion latents (B, k, h, w) (or autoencoder latents, without `latent_map`) -> images (B, 3, H, W) in
    [-1, 1]: back to the autoencoder's channels, optionally snapped to the nearest codebook entry, decoded."""
    z = latents if latent_map is None else latent_map.inverse(latents)
    if quantize:
        h, w = z.shape[2:]
        idx = autoencoder.quantizer.nearest(rearrange(z, "b d h w -> (b h w) d"))
        z = rearrange(autoencoder.quantizer.codebook[idx], "(b h w) d -> b d h w", h=h, w=w)
    return autoencoder.decoder(z).clamp(-1, 1)
