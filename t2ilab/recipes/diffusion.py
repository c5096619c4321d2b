"""Recipes of the diffusion family: the unconditional U-Net and the text-conditional U-Net with condition dropout
for classifier-free guidance (chapters "Diffusion from noise to birds" and "Guiding diffusion with text")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from ..clip import CLIPConfig
from ..data.augment import augment, batch_generator, to_unit_range
from ..diffusion import UNet, UNetConfig, as_denoiser, ddim_sample, ddpm_sample, diffusion_loss
from ..diffusion.pipeline import condition_from_ids, encode_captions, text_model_fn
from ..nn import count_parameters
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, model_device, protocol_metrics, tiny_data


@dataclass(frozen=True)
class DiffusionSampling:
    """How a diffusion model draws: DDIM with `steps` network calls (eta 0), or DDPM with all T of them."""

    sampler: Literal["ddim", "ddpm"] = "ddim"
    steps: int = 25  # DDIM steps; DDPM always takes every step of the schedule

    def check(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


@dataclass(frozen=True)
class GuidedSampling(DiffusionSampling):
    """A text-conditional model's sampling, with the classifier-free guidance scale."""

    guidance_scale: float = 3.0


@dataclass
class DiffusionRecipe(Recipe):
    condition_dropout: float = 0.15  # share of captions replaced by the null condition (CFG training)

    family: ClassVar[str] = "diffusion"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = UNet

    @property
    def conditional(self) -> bool:
        return self.model_config.word_dim is not None

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size)
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        unet = UNet(model_cfg)
        schedule = as_denoiser(unet).schedule  # the U-Net's own, as for sampling
        images, batch_size = data.images, self.batch_size
        conditional, drop_share = self.conditional, self.condition_dropout
        clip = all_ids = None
        if conditional:
            clip = frozen_clip(cfg.device)
            all_ids = torch.stack([clip.tokenizer.encode_batch(list(c), "replace", truncate=True)
                              for c in data.captions])  # (N, 10, T); training text read in bulk

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x = augment(to_unit_range(images[idx]), g, max_shift=0.0)  # flips only: birds face both ways
            if not conditional:
                return (x,)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            return x, all_ids[idx, which], torch.rand(batch_size, generator=g) < drop_share

        def step_fn(model, batch):
            prediction = model_cfg.prediction
            if conditional:
                x, ids, dropped = batch
                condition = condition_from_ids(clip, ids, dropped)
                return diffusion_loss(lambda x_t, t: model(x_t, t, condition), x, schedule, prediction), {}
            return diffusion_loss(lambda x_t, t: model(x_t, t), batch[0], schedule, prediction), {}

        return Job(unet, [Phase("train", step_fn)], batch_fn, cfg, {"condition_dropout": drop_share}
                   if conditional else {})

    def tiny(self) -> "DiffusionRecipe":
        small = dataclasses.replace(self.model_config, channels=(8, 16, 16), time_dim=32, attention_heads=2)
        return dataclasses.replace(self, model_config=small, batch_size=4, data=tiny_data(self.data))

    def text_to_image(self, unet: UNet, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: DDIM (or DDPM) on the U-Net's own schedule, with CFG when text-conditional."""
        options = self.options(options)
        clip = frozen_clip(device) if self.conditional else None
        denoiser = as_denoiser(unet)
        cfg = unet.cfg

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            fn = (text_model_fn(unet, encode_captions(clip, captions, device), options.guidance_scale)
                  if clip is not None else denoiser)
            shape = (len(captions), cfg.in_channels, cfg.image_size, cfg.image_size)
            if options.sampler == "ddpm":
                return ddpm_sample(fn, shape, generator=generator, device=device)
            return ddim_sample(fn, shape, num_steps=options.steps, generator=generator, device=device)

        return generate

    def evaluate(self, model: UNet, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        options = self.options(options)
        if options.sampler == "ddpm":  # what was run: every step of the schedule
            options = dataclasses.replace(options, steps=as_denoiser(model).schedule.num_steps)
        device = model_device(model)
        return protocol_metrics(self.text_to_image(model, options, device), n, seed, device, self.name, options,
                                parameters=count_parameters(model))


def unet_config(conditional: bool, schedule: str = "linear") -> UNetConfig:
    clip = CLIPConfig()
    # (32, 64, 96) channels: about 0.9 s per batch of 64 on two CPU cores, so 2,400 steps fit in 45 minutes.
    # v-prediction: with eps-prediction a 600-step run had learnt almost nothing of the caption (its loss with the
    # true caption was within 1% of its loss with the null caption at every t): see diffusion/process.py
    return UNetConfig(channels=(32, 64, 96), word_dim=clip.text_dim if conditional else None,
                      sentence_dim=clip.embed_dim if conditional else None, prediction="v", schedule=schedule)


PRESETS = [
    DiffusionRecipe(
        "diffusion-uncond-birds32", "unconditional DDPM U-Net on SynthBirds-200 train images, 32x32",
        unet_config(False), TrainConfig(steps=2400, lr=2e-3, warmup_steps=100, weight_decay=0.0, ema_decay=0.999,
                                        ema_warmup=True, seed=0), batch_size=64, sampling=DiffusionSampling()),
    DiffusionRecipe(
        "diffusion-text-birds32", "text-conditional DDPM U-Net (frozen clip-birds text tower, 15% condition dropout)",
        # cosine schedule (Nichol & Dhariwal, 2021): at 1,200 steps it gave CFG attribute accuracy 48.4% against the
        # linear schedule's 43.4% (N=300, s=3; benchmarks/text_diffusion_budget.py, and a diagnostic run of the same
        # recipe with schedule="cosine")
        unet_config(True, schedule="cosine"),
        TrainConfig(steps=2400, lr=2e-3, warmup_steps=100, weight_decay=0.0, ema_decay=0.999, ema_warmup=True, seed=0),
        batch_size=64, sampling=GuidedSampling(guidance_scale=3.0)),
]
