"""Batches as pure functions of (seed, step, rank), and the augmentations the presets draw from them.

The training loop resumes exactly because every batch is drawn from a generator seeded by the step, not from a
global stream (see `t2ilab.train.loop`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The generator of one step's batch on one process: a pure function of (seed, step, rank)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + rank)


def random_flip(images: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a random half of the batch: (B, 3, H, W) -> same, and the (B,) bool mask of mirrored rows."""
    flip = torch.rand(len(images), generator=g) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images), flip


def random_shift(images: torch.Tensor, g: torch.Generator, max_shift: float = 2.0) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels, repeating edge pixels: (B, 3, H, W) -> same."""
    if max_shift == 0:
        return images
    b, _, h, w = images.shape
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * max_shift * 2 / torch.tensor([w, h])
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(images: torch.Tensor, g: torch.Generator, max_shift: float = 2.0) -> torch.Tensor:
    """Random horizontal flips and translations of up to `max_shift` pixels: (B, 3, H, W) -> same."""
    return random_shift(random_flip(images, g)[0], g, max_shift)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0

