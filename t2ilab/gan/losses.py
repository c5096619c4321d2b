"""Adversarial losses and penalties, written once for every GAN here (chapters "Growing birds in stages" and
"One generator, deep fusion").

A text-conditional discriminator scores (image, sentence) pairs. The matching-aware game (Reed et al., 2016;
StackGAN; DF-GAN) gives it three kinds of pair: a real image with its own caption (should score high), a generated
image with its caption (low), and a real image with another image's caption (low): without the third, the
discriminator can ignore the text and the generator is never pushed to follow it.

    hinge, D:   E relu(1 - D(x, s)) + (E relu(1 + D(G(z, s), s)) + E relu(1 + D(x, s')) ) / 2     (DF-GAN, Eq. 3)
    hinge, G:   - E D(G(z, s), s)
    non-saturating, D:  E softplus(-D(x, s)) + E softplus(D(G(z, s), s)) [+ mismatched, as above]
    non-saturating, G:  E softplus(-D(G(z, s), s))
    MA-GP:      k E ( || (grad_x D(x, s), grad_s D(x, s)) || )^p,  k = 2, p = 6, on real matching pairs (DF-GAN)
    R1:         gamma / 2 E || grad_x D(x) ||^2 on real images (Mescheder et al., 2018)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

Critic = Callable[..., torch.Tensor]  # D(images, *condition) -> (B,) scores


class DiscriminatorTerms(NamedTuple):
    real: torch.Tensor  # loss on real, matching pairs
    fake: torch.Tensor  # loss on generated pairs
    mismatched: torch.Tensor  # loss on real images with another image's caption

    @property
    def total(self) -> torch.Tensor:
        return self.real + (self.fake + self.mismatched) / 2


def hinge_discriminator(real: torch.Tensor, fake: torch.Tensor, mismatched: torch.Tensor) -> DiscriminatorTerms:
    """Matching-aware hinge loss of the discriminator from its scores of the three kinds of pair."""
    return DiscriminatorTerms(F.relu(1 - real).mean(), F.relu(1 + fake).mean(), F.relu(1 + mismatched).mean())


def hinge_generator(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def nonsaturating_discriminator(real: torch.Tensor, fake: torch.Tensor,
                                mismatched: torch.Tensor) -> DiscriminatorTerms:
    """-log sigmoid(D) on real pairs, -log(1 - sigmoid(D)) on generated and mismatched pairs."""
    return DiscriminatorTerms(F.softplus(-real).mean(), F.softplus(fake).mean(), F.softplus(mismatched).mean())


def nonsaturating_generator(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def matching_aware_gradient_penalty(critic: Critic, images: torch.Tensor, sentence: torch.Tensor,
                                    k: float = 2.0, p: float = 6.0) -> torch.Tensor:
    """MA-GP (Tao et al., 2022, Eq. 4): k * mean over the batch of the p-th power of the norm of D's gradient with
    respect to the real image and its matching sentence embedding, taken together. It flattens the discriminator
    around real matching pairs, so that the generator's images converge on them."""
    images = images.detach().requires_grad_(True)
    sentence = sentence.detach().requires_grad_(True)
    scores = critic(images, sentence)
    grad_x, grad_s = torch.autograd.grad(scores.sum(), (images, sentence), create_graph=True)
    norm = torch.cat([grad_x.flatten(1), grad_s.flatten(1)], 1).norm(dim=1)
    return k * norm.pow(p).mean()


def r1_penalty(critic: Critic, images: torch.Tensor, *condition, gamma: float = 1.0) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): gamma / 2 * mean || grad_x D(x, condition) ||^2 on real images."""
    images = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(images, *condition).sum(), images, create_graph=True)
    return gamma / 2 * grad.flatten(1).pow(2).sum(1).mean()


def diff_augment(images: torch.Tensor, g: torch.Generator | None = None, shift: float = 0.125,
                 cutout: float = 0.5) -> torch.Tensor:
    """DiffAugment (Zhao et al., 2020), translation and cutout only: differentiable, applied alike to real and
    generated images in both players' steps. Colour jitter is left out: colour is what the captions describe.
    Translation moves each image by up to `shift` of its size (zero padding); cutout zeroes one square of
    `cutout` of its size at a random place."""
    b, _, h, w = images.shape
    device = images.device
    rand = lambda *shape: torch.rand(*shape, generator=g).to(device)  # noqa: E731
    # translation: integer offsets, by gathering from a zero-padded copy
    pad_h, pad_w = int(h * shift + 0.5), int(w * shift + 0.5)
    dy = (rand(b) * (2 * pad_h + 1)).long() - pad_h
    dx = (rand(b) * (2 * pad_w + 1)).long() - pad_w
    ys = (torch.arange(h, device=device)[None] - dy[:, None]).clamp(-1, h)  # (B, H), -1 and H are padding
    xs = (torch.arange(w, device=device)[None] - dx[:, None]).clamp(-1, w)
    padded = F.pad(images, (1, 1, 1, 1))
    out = padded[torch.arange(b, device=device)[:, None, None], :, (ys + 1)[:, :, None], (xs + 1)[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    # cutout: one square per image
    size_h, size_w = int(h * cutout + 0.5), int(w * cutout + 0.5)
    if size_h == 0 or size_w == 0:
        return out
    cy = (rand(b) * (h + 1 - size_h % 2)).long()
    cx = (rand(b) * (w + 1 - size_w % 2)).long()
    yy = torch.arange(h, device=device)[None, :, None]
    xx = torch.arange(w, device=device)[None, None, :]
    inside = ((yy - cy[:, None, None]).abs() <= size_h // 2) & ((xx - cx[:, None, None]).abs() <= size_w // 2)
    return out * (~inside)[:, None].to(out.dtype)
