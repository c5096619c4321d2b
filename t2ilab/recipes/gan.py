"""Recipes of the GAN family: the single-stage generator with deep fusion (DF-GAN), trained by two phases of the
shared loop, discriminator then generator, with the generator's EMA released (chapter "One generator, deep
fusion")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..data.augment import batch_generator, random_flip, to_unit_range
from ..gan import (DFGAN, DFGANConfig, DFGenerator, diff_augment, hinge_discriminator, hinge_generator,
                   matching_aware_gradient_penalty, truncated_noise)
from ..nn import count_parameters
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, tiny_data


@dataclass(frozen=True)
class GANSampling:
    """A GAN's sampling: the truncation psi of its noise (1: as trained; 0: one z for every sample)."""

    truncation: float = 1.0

    def check(self) -> None:
        if not 0 <= self.truncation <= 1:
            raise ValueError(f"truncation must be between 0 and 1, got {self.truncation}")


def sentence_features(clip, captions: list[str], device: str = "cpu") -> torch.Tensor:
    """Mini-CLIP sentence embeddings scaled to unit variance per component (B, embed_dim): the GANs' condition."""
    from ..metrics.alignment import embed_captions

    emb = embed_captions(clip, captions).to(device)
    return emb * emb.shape[1] ** 0.5


@dataclass
class DFGANRecipe(Recipe):
    generator_lr: float = 1e-4  # DF-GAN's: the discriminator learns 4x faster than the generator
    discriminator_lr: float = 4e-4
    gp_every: int = 4  # lazy regularisation: MA-GP on every k-th step, weighted by k (Karras et al., 2020)
    gp_weight: float = 2.0  # k of MA-GP
    gp_power: float = 6.0  # p of MA-GP
    diffaugment: bool = False  # translation and cutout of real and generated images in both phases

    family: ClassVar[str] = "gan"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = DFGenerator

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        clip = frozen_clip(cfg.device)
        flat = [c for caps in data.captions for c in caps]
        per_image = len(data.captions[0])
        sentences = sentence_features(clip, flat).view(len(data.captions), per_image, -1)  # (N, 10, D), once
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size,
                                        sentence_dim=sentences.shape[-1])
        torch.manual_seed(cfg.seed)
        gan = DFGAN(model_cfg)
        images, batch_size = data.images, self.batch_size
        gp_every, augment = self.gp_every, self.diffaugment

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x, _ = random_flip(to_unit_range(images[idx]), g)
            which = torch.randint(per_image, (batch_size,), generator=g)
            other = idx.roll(1)  # another image's caption: the mismatched pairs
            mismatched = sentences[other, torch.randint(per_image, (batch_size,), generator=g)]
            z = torch.randn(batch_size, model_cfg.z_dim, generator=g)
            seed = torch.randint(2 ** 31, (), generator=g)
            return x, sentences[idx, which], mismatched, z, seed, torch.tensor(step % gp_every == 0)

        def views(images: torch.Tensor, seed: torch.Tensor, salt: int) -> torch.Tensor:
            if not augment:
                return images
            return diff_augment(images, torch.Generator().manual_seed(int(seed) + salt))

        def discriminator_step(model: DFGAN, batch):
            x, s, s_mismatched, z, seed, regularise = batch
            d = model.discriminator
            with torch.no_grad():
                fake = model.generator(z, s)
            real_features = d.features(views(x, seed, 0))
            terms = hinge_discriminator(d.score(real_features, s), d(views(fake, seed, 1), s),
                                        d.score(real_features, s_mismatched))
            loss, logs = terms.total, {"d_real": terms.real.item(), "d_fake": terms.fake.item(),
                                       "d_mismatched": terms.mismatched.item()}
            if bool(regularise):
                penalty = matching_aware_gradient_penalty(lambda im, se: d(views(im, seed, 0), se), x, s,
                                                          self.gp_weight, self.gp_power)
                loss = loss + gp_every * penalty
                logs["ma_gp"] = penalty.item()
            return loss, logs

        def generator_step(model: DFGAN, batch):
            x, s, _, z, seed, _ = batch
            loss = hinge_generator(model.discriminator(views(model.generator(z, s), seed, 2), s))
            return loss, {"g_loss": loss.item()}

        phases = [Phase("discriminator", discriminator_step, module="discriminator", lr=self.discriminator_lr),
                  Phase("generator", generator_step, module="generator", lr=self.generator_lr)]
        extra = {"gp_every": gp_every, "gp_weight": self.gp_weight, "gp_power": self.gp_power,
                 "diffaugment": augment, "generator_lr": self.generator_lr,
                 "discriminator_lr": self.discriminator_lr,
                 "discriminator_parameters": count_parameters(gan.discriminator)}
        return Job(gan, phases, batch_fn, cfg, extra)

    def tiny(self) -> "DFGANRecipe":
        small = dataclasses.replace(self.model_config, z_dim=8, generator_width=4, discriminator_width=4,
                                    fusion_hidden=8)
        return dataclasses.replace(self, model_config=small, batch_size=4, gp_every=2, data=tiny_data(self.data))

    def text_to_image(self, generator: "DFGenerator | DFGAN", options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: one forward pass of G(psi * z, s) (of a released generator, or of the
        generator of a training pair)."""
        options = self.options(options)
        generator = getattr(generator, "generator", generator)
        clip = frozen_clip(device)

        @torch.no_grad()
        def generate(captions: list[str], g: torch.Generator) -> torch.Tensor:
            z = truncated_noise(len(captions), generator.cfg.z_dim, options.truncation, g, device)
            return generator(z, sentence_features(clip, captions, device))

        return generate



PRESETS = [
    DFGANRecipe(
        "dfgan-birds32", "DF-GAN-style generator: deep fusion of the sentence embedding in every UPBlock, one-way "
        "discriminator, hinge loss with MA-GP", DFGANConfig(),
        TrainConfig(steps=4000, lr=1e-4, betas=(0.0, 0.9), weight_decay=0.0, warmup_steps=0, cosine_decay=False,
                    grad_clip=0.0, ema_decay=0.999, ema_warmup=True, ema_module="generator", seed=0),
        batch_size=64, sampling=GANSampling()),
]
