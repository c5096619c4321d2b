"""One training step of each GAN of the course, as a loss of (model, batch) for the shared loop's phases:
discriminator first, then generator (recipes in `t2ilab.recipes.gan`; the trilemma chapter runs them by hand).

Every batch starts the same way (`caption_pairs`): real images, flipped at random, each with one of its own
captions' sentence features and one of another image's (the mismatched pair the matching-aware terms read). The
losses below take the rest of the batch as each recipe draws it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.augment import random_flip, to_unit_range
from .ddgan import posterior_sample
from .losses import (diff_augment, hinge_discriminator, hinge_generator, matching_aware_gradient_penalty,
                     nonsaturating_discriminator, nonsaturating_generator, r1_penalty)
from .stackgan import downsample_to, kl_to_standard_normal

LOSSES = {"nonsaturating": (nonsaturating_discriminator, nonsaturating_generator),
          "hinge": (hinge_discriminator, hinge_generator)}


def caption_pairs(images: torch.Tensor, sentences: torch.Tensor, batch_size: int, g: torch.Generator):
    """(x, s, s_mismatched): `batch_size` training images in [-1, 1], flipped at random; for each, the sentence
    features of one of its captions and of a caption of the next image in the batch. `sentences` is (images,
    captions per image, D); `g` is drawn from in a fixed order, so the batch of a step is the same on a resume."""
    per_image = sentences.shape[1]
    idx = torch.randint(len(images), (batch_size,), generator=g)
    x, _ = random_flip(to_unit_range(images[idx]), g)
    which = torch.randint(per_image, (batch_size,), generator=g)
    mismatched = sentences[idx.roll(1), torch.randint(per_image, (batch_size,), generator=g)]
    return x, sentences[idx, which], mismatched


def augmented(images: torch.Tensor, seed: torch.Tensor, salt: int, on: bool) -> torch.Tensor:
    """DiffAugment's view of `images` (translation and cutout drawn from seed + salt), or the images when off."""
    return diff_augment(images, torch.Generator().manual_seed(int(seed) + salt)) if on else images


# -- DF-GAN: hinge loss, matching-aware gradient penalty (MA-GP), optional DiffAugment ------------------------

def dfgan_discriminator_loss(model, batch, *, gp_every: int, gp_weight: float, gp_power: float,
                             diffaugment: bool = False):
    """Hinge loss on real-matching, fake and real-mismatched pairs; on regularised steps MA-GP at the real
    matching pairs, weighted by `gp_every` (lazy regularisation). Batch: x, s, s_mismatched, z, seed, regularise."""
    x, s, s_mismatched, z, seed, regularise = batch
    d = model.discriminator
    with torch.no_grad():
        fake = model.generator(z, s)
    real_features = d.features(augmented(x, seed, 0, diffaugment))
    terms = hinge_discriminator(d.score(real_features, s), d(augmented(fake, seed, 1, diffaugment), s),
                                d.score(real_features, s_mismatched))
    loss, logs = terms.total, {"d_real": terms.real.item(), "d_fake": terms.fake.item(),
                               "d_mismatched": terms.mismatched.item()}
    if bool(regularise):
        penalty = matching_aware_gradient_penalty(lambda im, se: d(augmented(im, seed, 0, diffaugment), se), x, s,
                                                  gp_weight, gp_power)
        loss = loss + gp_every * penalty
        logs["ma_gp"] = penalty.item()
    return loss, logs


def dfgan_generator_loss(model, batch, *, diffaugment: bool = False):
    """The hinge generator loss of G(z, s) under the caption it was drawn for."""
    x, s, _, z, seed, _ = batch
    loss = hinge_generator(model.discriminator(augmented(model.generator(z, s), seed, 2, diffaugment), s))
    return loss, {"g_loss": loss.item()}


# -- StackGAN++: one discriminator per branch, unconditional and conditional scores, CA's KL ----------------

def stackgan_discriminator_loss(model, batch, *, r1_gamma: float = 0.0, r1_every: int = 4):
    """Per branch: the non-saturating unconditional term (real or not, text aside) plus the matching-aware
    conditional one; on regularised steps R1 on both scores of the real matching pair. Batch: x, s, s_mismatched,
    z, ca_noise, regularise."""
    x, s, s_mismatched, z, ca_noise, regularise = batch
    with torch.no_grad():
        out = model.generator(z, s, ca_noise)
        mu_mismatched = model.generator.ca(s_mismatched, ca_noise)[1]
    loss, logs = 0.0, {}
    for d, fake in zip(model.discriminator.branches, out.images):
        real = downsample_to(x, fake.shape[-1])
        real_u, real_h = d(real)
        fake_u, fake_h = d(fake)
        unconditional = F.softplus(-real_u).mean() + F.softplus(fake_u).mean()
        conditional = nonsaturating_discriminator(d.conditional(real_h, out.mu), d.conditional(fake_h, out.mu),
                                                  d.conditional(real_h, mu_mismatched))
        branch = unconditional + conditional.total
        logs[f"d{fake.shape[-1]}"] = branch.item()
        if bool(regularise):
            def critic(im, d=d):
                score_u, h = d(im)
                return score_u + d.conditional(h, out.mu)

            penalty = r1_penalty(critic, real, gamma=r1_gamma)
            branch = branch + r1_every * penalty
            logs[f"r1_{fake.shape[-1]}"] = penalty.item()
        loss = loss + branch
    return loss, logs


def stackgan_generator_loss(model, batch, *, kl_weight: float):
    """CA's KL to N(0, I), weighted, plus every branch's non-saturating unconditional and conditional terms."""
    x, s, _, z, ca_noise, _ = batch
    out = model.generator(z, s, ca_noise)
    loss, logs = kl_weight * kl_to_standard_normal(out.mu, out.logvar), {}
    logs["kl"] = loss.item() / kl_weight
    for d, fake in zip(model.discriminator.branches, out.images):
        fake_u, fake_h = d(fake)
        branch = nonsaturating_generator(fake_u) + nonsaturating_generator(d.conditional(fake_h, out.mu))
        loss = loss + branch
        logs[f"g{fake.shape[-1]}"] = branch.item()
    return loss, logs


# -- DDGAN: pairs (x_{t-1}, x_t) judged with the caption; x_{t-1} of a fake from the posterior given G's x_0 ----

def ddgan_fake(model, x_t, t, s, z, seed, schedule) -> torch.Tensor:
    """A generated x_{t-1}: G predicts x_0 from (x_t, z, t, s), the posterior q(x_{t-1} | x_t, x_0) draws it."""
    x0 = model.generator(x_t, z, t, s)
    return posterior_sample(x0, x_t, t, schedule, torch.Generator().manual_seed(int(seed)))


def ddgan_discriminator_loss(model, batch, *, schedule, loss: str = "nonsaturating", r1_gamma: float = 0.02,
                             r1_every: int = 16, share: int = 0, shares: int = 1):
    """The discriminator's loss on its `share` of the batch (every `shares`-th item): real, fake and
    real-mismatched pairs, R1 on real x_{t-1} on regularised steps (first share only). Batch: x_prev, x_t, t, s,
    s_mismatched, z, seed, regularise."""
    d_loss = LOSSES[loss][0]
    x_prev, x_t, t, s, s_mismatched, z, seed, regularise = (b[share::shares] if b.dim() else b for b in batch)
    d = model.discriminator
    with torch.no_grad():
        fake = ddgan_fake(model, x_t, t, s, z, seed + share, schedule)
    terms = d_loss(d(x_prev, x_t, t, s), d(fake, x_t, t, s), d(x_prev, x_t, t, s_mismatched))
    total, logs = terms.total, {"d_real": terms.real.item(), "d_fake": terms.fake.item(),
                                "d_mismatched": terms.mismatched.item()}
    if bool(regularise) and share == 0:
        penalty = r1_penalty(lambda im: d(im, x_t, t, s), x_prev, gamma=r1_gamma)
        total = total + r1_every * penalty
        logs["r1"] = penalty.item()
    return total, logs


def ddgan_generator_loss(model, batch, *, schedule, loss: str = "nonsaturating"):
    """The generator's loss on the whole batch: its x_{t-1} judged under the caption it was drawn for."""
    _, x_t, t, s, _, z, seed, _ = batch
    g_loss = LOSSES[loss][1]
    total = g_loss(model.discriminator(ddgan_fake(model, x_t, t, s, z, seed, schedule), x_t, t, s))
    return total, {"g_loss": total.item()}
