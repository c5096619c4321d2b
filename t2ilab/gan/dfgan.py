"""Strategy 2 of the GAN family: one generator with deep text-image fusion (chapter "One generator, deep fusion").

After Tao et al. (2022), "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis" (tobran/DF-GAN):

- The generator maps noise z to a 4x4 feature map and grows it with UPBlocks to the image size. Each UPBlock
  upsamples, then applies two deep fusion blocks, each followed by a 3x3 convolution. A fusion block is two
  affine transforms, each followed by LeakyReLU: the channel-wise scale gamma(s) and shift beta(s) are predicted
  from the sentence embedding s by small MLPs, so the caption modulates every feature map of every stage.
- The discriminator is one-way: a residual CNN down to 4x4 features, which are concatenated with the sentence
  embedding (repeated over the positions) and mapped to one score, for the matching-aware hinge loss with MA-GP
  (`losses.py`).

Sizes here follow the compact probe of this course rather than the paper's 256x256 model: three UPBlocks from
4x4 to 32x32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_model


@dataclass
class DFGANConfig:
    image_size: int = 32
    z_dim: int = 100
    sentence_dim: int = 256  # mini-CLIP's embed_dim
    generator_width: int = 32  # channels at the image size; x2 per halving, up to x8
    discriminator_width: int = 32
    fusion_hidden: int = 128  # width of the MLPs that predict gamma and beta

    @property
    def stages(self) -> int:
        """UPBlocks from 4x4 to the image size."""
        stages = (self.image_size // 4).bit_length() - 1
        if 4 << stages != self.image_size:
            raise ValueError(f"image_size must be 4 times a power of two, got {self.image_size}")
        return stages

    def widths(self, base: int) -> list[int]:
        """Channels from 4x4 up to the image size: base * (8, ..., 2, 1)-ish, at most base * 8."""
        return [base * min(8, 2 ** (self.stages - i)) for i in range(self.stages + 1)]


class Affine(nn.Module):
    """x * (1 + gamma(s)) + beta(s), channel-wise; gamma and beta start at zero (an identity at first)."""

    def __init__(self, channels: int, sentence_dim: int, hidden: int):
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(sentence_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.beta = nn.Sequential(nn.Linear(sentence_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        for mlp in (self.gamma, self.beta):
            nn.init.zeros_(mlp[-1].weight)
            nn.init.zeros_(mlp[-1].bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.gamma(s)[:, :, None, None]) + self.beta(s)[:, :, None, None]


class FusionBlock(nn.Module):
    """DF-GAN's deep fusion block: affine, LeakyReLU, affine, LeakyReLU."""

    def __init__(self, channels: int, sentence_dim: int, hidden: int):
        super().__init__()
        self.affine1 = Affine(channels, sentence_dim, hidden)
        self.affine2 = Affine(channels, sentence_dim, hidden)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.affine1(x, s), 0.2)
        return F.leaky_relu(self.affine2(x, s), 0.2)


class UpBlock(nn.Module):
    """Upsample x2, then fuse -> conv -> fuse -> conv as a residual on a (1x1-projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, sentence_dim: int, hidden: int):
        super().__init__()
        self.fuse1 = FusionBlock(c_in, sentence_dim, hidden)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.fuse2 = FusionBlock(c_out, sentence_dim, hidden)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv2(self.fuse2(self.conv1(self.fuse1(x, s)), s))
        return self.shortcut(x) + h


@register_model
class DFGenerator(nn.Module):
    """G(z, s): noise (B, z_dim) and sentence embeddings (B, sentence_dim) -> images (B, 3, S, S) in [-1, 1]."""

    config_class = DFGANConfig

    def __init__(self, cfg: DFGANConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.widths(cfg.generator_width)
        self.fc = nn.Linear(cfg.z_dim, widths[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(a, b, cfg.sentence_dim, cfg.fusion_hidden)
                                    for a, b in zip(widths[:-1], widths[1:]))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(widths[-1], 3, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), -1, 4, 4)
        for block in self.blocks:
            h = block(h, sentence)
        return self.to_rgb(h)


class DownBlock(nn.Module):
    """Residual: conv 4x4 stride 2 -> LeakyReLU -> conv 3x3 -> LeakyReLU, plus an average-pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2))
        self.shortcut = nn.Conv2d(c_in, c_out, 1)
        self.gamma = nn.Parameter(torch.zeros(()))  # the residual is let in gradually (DF-GAN's D_Block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.gamma * self.residual(x)


class DFDiscriminator(nn.Module):
    """D(x, s): images and sentence embeddings -> (B,) scores (one-way: image features joined with the text)."""

    def __init__(self, cfg: DFGANConfig):
        super().__init__()
        widths = list(reversed(cfg.widths(cfg.discriminator_width)))  # image size down to 4x4
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1)
        self.blocks = nn.Sequential(*[DownBlock(a, b) for a, b in zip(widths[:-1], widths[1:])])
        c = widths[-1]
        self.joint = nn.Sequential(nn.Conv2d(c + cfg.sentence_dim, c, 3, padding=1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(c, 1, 4))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))  # (B, C, 4, 4)

    def score(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        s = sentence[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return self.joint(torch.cat([features, s], 1)).flatten()

    def forward(self, x: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x), sentence)


class DFGAN(nn.Module):
    """Both players, for training (`t2ilab train` steps each in its own phase); the generator is what is released."""

    def __init__(self, cfg: DFGANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = DFGenerator(cfg)
        self.discriminator = DFDiscriminator(cfg)


def truncated_noise(n: int, z_dim: int, truncation: float, generator: torch.Generator | None = None,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """z ~ N(0, I) scaled by psi = `truncation` (Brock et al., 2019, "the truncation trick" in its scaling form,
    as in StyleGAN's psi toward the mean z = 0): psi = 1 is the training distribution, psi = 0 the same z for
    every sample; in between trades diversity for typicality."""
    if not 0 <= truncation <= 1:
        raise ValueError(f"truncation must be between 0 and 1, got {truncation}")
    return (torch.randn(n, z_dim, generator=generator) * truncation).to(device)
