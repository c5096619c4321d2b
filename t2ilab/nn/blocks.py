"""Convolutional building blocks: a pre-activation residual block (He et al., 2016, as used in the DDPM U-Net of
Ho et al., 2020) with an optional embedding that shifts its features, resampling layers, and the convolutional
encoder that every image tower of the course shares (mini-CLIP's, the noise-aware judges', the evaluator's)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (frozen ones included: a released model is frozen)."""
    return sum(p.numel() for p in module.parameters())


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels; the group count always divides `channels`."""
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """norm-SiLU-conv twice, plus a skip. `emb` (B, emb_dim), if given, scales and shifts the second
    normalisation per channel, norm(h) * (1 + scale) + shift (the "scale-shift norm" of Dhariwal & Nichol, 2021).

    (B, in_ch, H, W) -> (B, out_ch, H, W)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_ch) if emb_dim else None
        self.norm2, self.conv2 = group_norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("this ResBlock was built with emb_dim and needs an embedding")
            scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided 3x3 convolution: (B, C, H, W) -> (B, out_ch, H/2, W/2)."""

    def __init__(self, channels: int, out_ch: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(channels, out_ch or channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 convolution: (B, C, H, W) -> (B, out_ch, 2H, 2W)."""

    def __init__(self, channels: int, out_ch: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(channels, out_ch or channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ConvEncoder(nn.ModuleList):
    """The course's image encoder: a 3x3 stem, then per level `blocks_per_level` ResBlocks and a strided conv to
    the next level's width (after the last level too when `downsample_last`).

    (B, in_channels, H, W)[, emb (B, emb_dim)] -> (B, channels[-1], H / 2**levels, W / 2**levels) with
    `downsample_last`, else H / 2**(levels - 1). A ModuleList, so that a tower keeps its layers under `body.0`,
    `body.1`, ... whatever it adds around them."""

    def __init__(self, channels: tuple[int, ...], emb_dim: int | None = None, blocks_per_level: int = 1,
                 downsample_last: bool = True, in_channels: int = 3):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1)]
        for i, c in enumerate(channels):
            layers.extend(ResBlock(c, c, emb_dim) for _ in range(blocks_per_level))
            if i + 1 < len(channels):
                layers.append(Downsample(c, channels[i + 1]))
            elif downsample_last:
                layers.append(Downsample(c, c))
        super().__init__(layers)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x
