"""Strategy 1 of the GAN family: a tree of generators that grow the bird in stages (chapter "Growing birds in
stages").

After Zhang et al. (2018), "StackGAN++: Realistic Image Synthesis with Stacked Generative Adversarial Networks"
(hanzhanggit/StackGAN-v2), at a third of its sizes (branches at 16, 32 and 64 pixels instead of 64, 128 and 256):

- Conditioning augmentation (CA): the sentence embedding is mapped to the mean and log-variance of a Gaussian, and
  the generator reads a sample c = mu + sigma * eps of it. Nearby captions then overlap, which smooths the
  conditioning manifold of a small data set; a KL term pulls the Gaussian towards N(0, I):
      KL( N(mu, diag sigma^2) || N(0, I) ) = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
- A tree-shaped generator: a first stage turns (z, c) into 16x16 features, each further stage joins its input
  features with c again, refines them with residual blocks and doubles the size. Every stage has its own branch to
  an image, so the tree draws the same bird at 16, 32 and 64 pixels.
- One discriminator per branch, each with an unconditional score (is this a real bird?) and a conditional one
  (does it match this caption?); all branches are trained jointly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_model


@dataclass
class StackGANConfig:
    image_size: int = 64  # the last branch; branches at image_size / 4, / 2 and / 1
    z_dim: int = 100
    sentence_dim: int = 256
    condition_dim: int = 128  # CA's output c
    generator_width: int = 32  # ngf: 16 * ngf channels at 4x4, ngf at the 16x16 first branch, then kept
    discriminator_width: int = 16
    residual_blocks: int = 1  # per further stage

    @property
    def branch_sizes(self) -> list[int]:
        return [self.image_size // 4, self.image_size // 2, self.image_size]


class ConditioningAugmentation(nn.Module):
    """s -> (c, mu, logvar): FC + GLU to the mean and log-variance, then a reparameterised sample."""

    def __init__(self, sentence_dim: int, condition_dim: int):
        super().__init__()
        self.fc = nn.Linear(sentence_dim, condition_dim * 4)

    def forward(self, sentence: torch.Tensor, noise: torch.Tensor | None = None):
        mu, logvar = F.glu(self.fc(sentence), dim=1).chunk(2, dim=1)
        if noise is None:
            noise = torch.randn_like(mu)
        return mu + (0.5 * logvar).exp() * noise, mu, logvar


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over dimensions, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Nearest upsampling x2, 3x3 convolution to 2 * c_out, batch norm, GLU (StackGAN++'s upBlock)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, 2 * c_out, 3, padding=1),
                         nn.BatchNorm2d(2 * c_out), nn.GLU(dim=1))


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.GLU(dim=1),
                                  nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class NextStage(nn.Module):
    """Features (B, C, s, s) and c -> features (B, C, 2s, 2s): join with c, residual blocks, upsample."""

    def __init__(self, c: int, condition_dim: int, blocks: int):
        super().__init__()
        self.joint = nn.Sequential(nn.Conv2d(c + condition_dim, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c),
                                   nn.GLU(dim=1))
        self.residual = nn.Sequential(*[ResidualBlock(c) for _ in range(blocks)])
        self.up = up_block(c, c)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        cond = c[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return self.up(self.residual(self.joint(torch.cat([h, cond], 1))))


class GeneratorOutput(NamedTuple):
    images: list[torch.Tensor]  # one per branch, smallest first, each in [-1, 1]
    mu: torch.Tensor
    logvar: torch.Tensor


@register_model
class StackGenerator(nn.Module):
    """G(z, s) -> images at image_size / 4, / 2 and / 1, and CA's mean and log-variance (for the KL term)."""

    config_class = StackGANConfig

    def __init__(self, cfg: StackGANConfig):
        super().__init__()
        self.cfg = cfg
        ngf = cfg.generator_width
        self.ca = ConditioningAugmentation(cfg.sentence_dim, cfg.condition_dim)
        self.fc = nn.Sequential(nn.Linear(cfg.z_dim + cfg.condition_dim, ngf * 16 * 16 * 2, bias=False),
                                nn.BatchNorm1d(ngf * 16 * 16 * 2), nn.GLU(dim=1))
        # 4x4 x 16 ngf -> 8x8 x 8 ngf -> 16x16 x 4 ngf -> ... the first branch at image_size / 4
        first, widths, size = [], [ngf * 16], 4
        while size < cfg.branch_sizes[0]:
            widths.append(max(ngf, widths[-1] // 2))
            first.append(up_block(widths[-2], widths[-1]))
            size *= 2
        self.first = nn.Sequential(*first)
        c = widths[-1]
        self.stages = nn.ModuleList(NextStage(c, cfg.condition_dim, cfg.residual_blocks) for _ in range(2))
        self.to_image = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 3, 3, padding=1), nn.Tanh()) for _ in range(3))

    def forward(self, z: torch.Tensor, sentence: torch.Tensor, ca_noise: torch.Tensor | None = None) -> GeneratorOutput:
        c, mu, logvar = self.ca(sentence, ca_noise)
        h = self.first(self.fc(torch.cat([z, c], 1)).view(len(z), -1, 4, 4))
        images = [self.to_image[0](h)]
        for stage, head in zip(self.stages, self.to_image[1:]):
            h = stage(h, c)
            images.append(head(h))
        return GeneratorOutput(images, mu, logvar)


class BranchDiscriminator(nn.Module):
    """One branch's D: image -> 4x4 features; an unconditional score and a conditional score with mu(s)."""

    def __init__(self, size: int, width: int, condition_dim: int):
        super().__init__()
        layers, c_in, c = [], 3, width
        while size > 4:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in, c, size = c, min(c * 2, width * 8), size // 2
        self.encode = nn.Sequential(*layers)
        self.unconditional = nn.Conv2d(c_in, 1, 4)
        self.joint = nn.Sequential(nn.Conv2d(c_in + condition_dim, c_in, 3, padding=1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(c_in, 1, 4))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unconditional scores (B,) and the 4x4 features the conditional score reads."""
        h = self.encode(images)
        return self.unconditional(h).flatten(), h

    def conditional(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        cond = condition[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return self.joint(torch.cat([features, cond], 1)).flatten()


class StackDiscriminators(nn.Module):
    def __init__(self, cfg: StackGANConfig):
        super().__init__()
        self.branches = nn.ModuleList(BranchDiscriminator(s, cfg.discriminator_width, cfg.condition_dim)
                                      for s in cfg.branch_sizes)


class StackGAN(nn.Module):
    """The generator tree and its three discriminators, for training; the generator is what is released."""

    def __init__(self, cfg: StackGANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = StackGenerator(cfg)
        self.discriminator = StackDiscriminators(cfg)


def downsample_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Real images at a branch's size (area averaging)."""
    return images if images.shape[-1] == size else F.adaptive_avg_pool2d(images, size)
