"""The image tokenizer: a VQ-VAE that turns a bird into a grid of discrete codes and back (chapter "Images as tokens").

After van den Oord et al. (2017), "Neural Discrete Representation Learning", with the codebook learnt by
exponential moving averages (their Appendix A.1; Razavi et al., 2019):

    z_e = encoder(x)                                   (B, D, h, w) continuous
    k   = argmin_j || z_e - e_j ||^2                   nearest code, per position              (Eq. 1)
    z_q = e_k, passed to the decoder with the straight-through gradient z_e + sg(z_q - z_e)
    L   = || x - decoder(z_q) ||^2 / var(x) + beta || z_e - sg(z_q) ||^2                      (Eq. 3, EMA form)
    N_j <- g N_j + (1 - g) n_j,   m_j <- g m_j + (1 - g) sum_{i: k_i = j} z_e,i,   e_j = m_j / N_j

Two fixes keep the codebook alive on short runs (without them most codes are never chosen, "index collapse"):
the codebook starts from k-means of the first batch's encoder outputs, and a code whose usage N_j falls below a
threshold is restarted at a random encoder output of the current batch. Both are switches in the config, so
the chapter can show what happens without them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..nn import Downsample, ResBlock, Upsample, group_norm
from ..registry import register_model


class Quantized(NamedTuple):
    quantized: torch.Tensor  # (B, D, h, w), with the straight-through gradient to z_e
    indices: torch.Tensor  # (B, h, w) code ids
    commitment: torch.Tensor  # || z_e - sg(z_q) ||^2, mean
    perplexity: torch.Tensor  # exp(entropy of the batch's code usage): the number of codes "in use"
    used_share: torch.Tensor  # share of the codebook chosen at least once in the batch


def kmeans(points: torch.Tensor, k: int, iterations: int = 10) -> torch.Tensor:
    """Lloyd's k-means of points (N, D) into k centres (k, D), started from k random points (global RNG)."""
    centres = points[torch.randperm(len(points), device=points.device)[:k]].clone()
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        empty = counts == 0  # keep an empty centre where it is
        centres = torch.where(empty[:, None], centres, sums / counts.clamp(min=1)[:, None])
    return centres


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with an EMA codebook, k-means initialisation and dead-code restarts."""

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, kmeans_init: bool = True,
                 restart_below: float = 0.0, eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.dim, self.decay, self.eps = num_codes, dim, decay, eps
        self.kmeans_init, self.restart_below = kmeans_init, restart_below
        self.register_buffer("codebook", torch.randn(num_codes, dim))
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("code_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.tensor(0.0 if kmeans_init else 1.0))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of flat (N, D): (N,)."""
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                     + self.codebook.pow(2).sum(1)[None])
        return distances.argmin(1)

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        """One EMA step of usage N and sums m, then e = m / N with Laplace-smoothed N (van den Oord, App. A.1)."""
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)
        sums = torch.zeros_like(self.code_sum).index_add_(0, indices, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.code_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, flat: torch.Tensor) -> int:
        """Move codes whose usage N_j fell below `restart_below` to random encoder outputs; returns how many."""
        dead = (self.cluster_size < self.restart_below).nonzero().squeeze(1)
        if len(dead) == 0:
            return 0
        chosen = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self.codebook[dead] = chosen
        self.code_sum[dead] = chosen
        self.cluster_size[dead] = 1.0
        return len(dead)

    def forward(self, z: torch.Tensor) -> Quantized:
        h = z.shape[2]
        flat = rearrange(z, "b d h w -> (b h w) d")
        if self.training and not bool(self.initialised):
            with torch.no_grad():
                self.codebook.copy_(kmeans(flat.detach().float(), self.num_codes))
                self.code_sum.copy_(self.codebook)
                self.initialised.fill_(1.0)
        indices = self.nearest(flat.detach())
        if self.training:
            self.ema_update(flat.detach(), indices)
            if self.restart_below > 0:
                self.restart_dead_codes(flat.detach())
        quantized = rearrange(self.codebook[indices], "(b h w) d -> b d h w", h=h, w=z.shape[3])
        commitment = F.mse_loss(z, quantized.detach())
        usage = torch.bincount(indices, minlength=self.num_codes).float() / len(indices)
        perplexity = torch.exp(-(usage * (usage + 1e-10).log()).sum())
        straight_through = z + (quantized - z).detach()
        return Quantized(straight_through, rearrange(indices, "(b h w) -> b h w", h=h, w=z.shape[3]), commitment,
                         perplexity, (usage > 0).float().mean())


@dataclass
class VQVAEConfig:
    image_size: int = 32
    channels: tuple[int, ...] = (64, 128)  # after each stride-2 convolution (the encoder halves the size each time)
    res_blocks: int = 2  # at the token resolution, in the encoder and in the decoder
    code_dim: int = 64
    num_codes: int = 512
    commitment: float = 0.25  # beta
    ema_decay: float = 0.99
    kmeans_init: bool = True
    restart_below: float = 1.0  # restart a code chosen less than once per batch (EMA of its count); 0: never

    @property
    def downsamples(self) -> int:
        return len(self.channels)

    @property
    def grid(self) -> int:
        return self.image_size >> self.downsamples


class VQVAEOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 3, H, W)
    indices: torch.Tensor  # (B, h, w)
    commitment: torch.Tensor
    perplexity: torch.Tensor
    used_share: torch.Tensor


@register_model
class VQVAE(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] <-> code ids (B, h, w), h = H / 2**len(channels).

    The layout of the reference VQ-VAE (van den Oord et al., 2017; zalandoresearch/pytorch-vq-vae): stride-2
    convolutions down to the token grid, residual blocks there, and the mirror image with nearest-neighbour
    upsampling back; only the first and last convolutions run at full resolution, which keeps a step cheap on a CPU.
    """

    config_class = VQVAEConfig

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        ch, width = list(cfg.channels), cfg.channels[-1]
        enc: list[nn.Module] = []
        for c_in, c_out in zip([3] + ch[:-1], ch):
            enc += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
        enc += [ResBlock(width, width) for _ in range(cfg.res_blocks)]
        enc += [group_norm(width), nn.SiLU(), nn.Conv2d(width, cfg.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(cfg.num_codes, cfg.code_dim, cfg.ema_decay, cfg.kmeans_init,
                                         cfg.restart_below)
        dec: list[nn.Module] = [nn.Conv2d(cfg.code_dim, width, 3, padding=1)]
        dec += [ResBlock(width, width) for _ in range(cfg.res_blocks)]
        for c_in, c_out in zip(reversed(ch), list(reversed(ch))[1:] + [ch[0] // 2]):
            dec += [Upsample(c_in, c_out), group_norm(c_out), nn.SiLU()]
        dec += [nn.Conv2d(ch[0] // 2, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """The continuous pre-quantisation latents z_e: (B, code_dim, h, w)."""
        return self.encoder(images)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> code ids (B, h, w)."""
        flat = rearrange(self.encoder(images), "b d h w -> (b h w) d")
        return self.quantizer.nearest(flat).view(len(images), self.cfg.grid, self.cfg.grid)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Code ids (B, h, w) or (B, h*w) -> images (B, 3, H, W) (not clamped)."""
        grid = self.cfg.grid
        codes = self.quantizer.codebook[indices.reshape(len(indices), grid, grid)]  # (B, h, w, D)
        return self.decoder(rearrange(codes, "b h w d -> b d h w"))

    def forward(self, images: torch.Tensor) -> VQVAEOutput:
        q = self.quantizer(self.encoder(images))
        return VQVAEOutput(self.decoder(q.quantized), q.indices, q.commitment, q.perplexity, q.used_share)

    @property
    def tokens_per_image(self) -> int:
        return self.cfg.grid ** 2


def vqvae_loss(out: VQVAEOutput, images: torch.Tensor, commitment: float, data_variance: float) -> torch.Tensor:
    """Reconstruction MSE over the data variance plus beta times the commitment term (codebook by EMA)."""
    return F.mse_loss(out.reconstruction, images) / data_variance + commitment * out.commitment


def codebook_perplexity(indices: torch.Tensor, num_codes: int) -> float:
    """exp(entropy) of the code usage over all positions of `indices`: between 1 and num_codes."""
    usage = torch.bincount(indices.flatten(), minlength=num_codes).float()
    usage = usage / usage.sum()
    return float(math.exp(-(usage * (usage + 1e-10).log()).sum()))
