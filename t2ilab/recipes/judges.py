"""Recipes of the noise-aware judges that steer the unconditional U-Net: classifier guidance and semantic (CLIP)
guidance (chapter "Guiding diffusion with text"). A judge's card holds its own accuracy on noised test images and
the protocol's metrics of the generator it guides (named in the `generator` field)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..clip import CLIPConfig, contrastive_loss, embed_captions
from ..data import BIRD_GROUPS
from ..data.augment import augment, batch_generator, to_unit_range
from ..diffusion import as_denoiser, ddim_sample, get_schedule, gradient_guidance, q_sample
from ..diffusion.noisy import (NoisyAttributeClassifier, NoisyClassifierConfig, NoisyCLIPConfig, NoisyImageTower,
                               classifier_score, clip_score)
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, model_device, protocol_metrics, tiny_data
from .. import zoo
from ..metrics.alignment import r_precision_from_embeddings

NOISE_LEVELS = (0, 250, 500, 750, 999)  # the timesteps at which the judges' own accuracy is reported


@dataclass(frozen=True)
class JudgeSampling:
    """DDIM on the guided U-Net with `steps` calls, each shifted by `guidance_scale` times the judge's gradient."""

    steps: int = 25
    guidance_scale: float = 1.0
    LIMITS: ClassVar[dict[str, str]] = {"steps": "1 to 1000"}  # what `check` enforces, for --help

    def check(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be between 1 and 1000 (the schedule's length), got {self.steps}")


@dataclass
class JudgeRecipe(Recipe):
    """A noise-aware judge; `text_to_image` is the guided generator it makes of `guided_model`."""

    guided_model: str = "diffusion-uncond-birds32"

    family: ClassVar[str] = "diffusion"
    colour: ClassVar[str] = "tab:blue"
    role: ClassVar[str] = "judge"

    def noisy_batch(self, images: torch.Tensor, seed: int, step: int, rank: int):
        """A batch of noised training images: (x_t, t, the image indices, the batch's generator)."""
        schedule = get_schedule(self.model_config.schedule)
        g = batch_generator(seed, step, rank)
        idx = torch.randint(len(images), (self.batch_size,), generator=g)
        x = augment(to_unit_range(images[idx]), g)
        t = torch.randint(schedule.num_steps, (self.batch_size,), generator=g)
        x_t = q_sample(x, t, torch.randn(x.shape, generator=g), schedule)
        return x_t, t, idx, g

    def score_fn(self, judge: nn.Module, captions: list[str], device: str):
        raise NotImplementedError

    def network_evaluations(self, options: Any) -> int:
        """DDIM on the unconditional U-Net, plus the judge's forward and backward pass at every step."""
        return 2 * options.steps

    def text_to_image(self, judge: nn.Module, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: DDIM on the unconditional U-Net, guided by the judge's gradient, on the
        U-Net's own schedule (the judge must have been trained on the same one: t means the same noise level)."""

        options = self.options(options)
        unet = zoo.load(self.guided_model, device=device)
        if unet.cfg.schedule != judge.cfg.schedule:
            raise ValueError(f"{self.name} was trained on the {judge.cfg.schedule} schedule but {self.guided_model} "
                             f"on the {unet.cfg.schedule} one: its t would mean another noise level")
        denoiser = as_denoiser(unet)
        cfg = unet.cfg

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            fn = gradient_guidance(denoiser, self.score_fn(judge, captions, device), options.guidance_scale)
            return ddim_sample(fn, (len(captions), cfg.in_channels, cfg.image_size, cfg.image_size),
                               num_steps=options.steps, generator=generator, device=device)

        return generate

    def guided_metrics(self, judge: nn.Module, n: int | None, seed: int, options: Any) -> dict[str, Any]:
        device = model_device(judge)
        return protocol_metrics(self.text_to_image(judge, options, device), n, seed, device, self.guided_model,
                                options) | {"guide": self.name}

    def noised_test_images(self, n: int | None, g: torch.Generator, device):
        """The first N test images (default 2000) noised at each of NOISE_LEVELS: yields (t, x_t, t as (N,))."""
        test = self.data.load("test")
        count = min(n or 2000, len(test))
        x = test.image_tensor(torch.arange(count)).to(device)
        schedule = get_schedule(self.model_config.schedule)
        for level in NOISE_LEVELS:
            t = torch.full((count,), level, device=device)
            yield level, q_sample(x, t, torch.randn(x.shape, generator=g).to(device), schedule), t


@dataclass
class NoisyClassifierRecipe(JudgeRecipe):
    model_class: ClassVar[type] = NoisyAttributeClassifier

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.require("attribute_index", preset=self.name)
        images, attrs = data.images, data.attribute_index

        def batch_fn(step: int, rank: int, world: int):
            x_t, t, idx, _ = self.noisy_batch(images, cfg.seed, step, rank)
            return x_t, t, attrs[idx]

        def step_fn(model, batch):
            x_t, t, targets = batch
            logits = model(x_t, t)
            loss = sum(F.cross_entropy(logits[g], targets[:, j]) for j, g in enumerate(BIRD_GROUPS))
            accuracy = torch.stack([(logits[g].argmax(1) == targets[:, j]) for j, g in enumerate(BIRD_GROUPS)])
            return loss / len(BIRD_GROUPS), {"attribute_acc": float(accuracy.float().mean())}

        torch.manual_seed(cfg.seed)
        return Job(NoisyAttributeClassifier(self.model_config), [Phase("train", step_fn)], batch_fn, cfg)

    def tiny(self) -> "NoisyClassifierRecipe":
        small = dataclasses.replace(self.model_config, channels=(8, 16, 16), time_dim=32)
        return dataclasses.replace(self, model_config=small, batch_size=8, data=tiny_data(self.data))

    def score_fn(self, judge, captions, device):
        return classifier_score(judge, captions)

    @torch.no_grad()
    def evaluate(self, model, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """Attribute accuracy on noised test images at several t, then the metrics of guided sampling."""
        options = self.options(options)
        test = self.data.load("test")
        metrics: dict[str, Any] = {}
        g = torch.Generator().manual_seed(seed)
        for level, x_t, t in self.noised_test_images(n, g, model_device(model)):
            logits = model(x_t, t)
            hits = torch.stack([logits[gr].argmax(1).cpu() == test.attribute_index[:len(x_t), j]
                                for j, gr in enumerate(BIRD_GROUPS)])
            metrics[f"attribute_accuracy_t{level}"] = float(hits.float().mean())
        return metrics | self.guided_metrics(model, n, seed, options)


@dataclass
class NoisyCLIPRecipe(JudgeRecipe):
    model_class: ClassVar[type] = NoisyImageTower

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        clip = frozen_clip(cfg.device)
        all_ids = clip.tokenizer.encode_per_image(data.captions)  # (N, 10, T)
        logit_scale = float(clip.log_scale.clamp(max=math.log(100.0)).exp())

        def batch_fn(step: int, rank: int, world: int):
            x_t, t, idx, g = self.noisy_batch(data.images, cfg.seed, step, rank)
            ids = all_ids[idx, torch.randint(all_ids.shape[1], (len(idx),), generator=g)]
            return x_t, t, ids[:, : int((ids != clip.cfg.pad_id).sum(1).max())]  # trim the common padding

        def step_fn(model, batch):
            x_t, t, ids = batch
            with torch.no_grad():
                text = clip.encode_text(ids).sentence  # the text side is frozen
            logits = logit_scale * model(x_t, t) @ text.T  # (B, B)
            target = torch.arange(len(x_t), device=x_t.device)
            return contrastive_loss(logits), {"batch_acc": float((logits.argmax(1) == target).float().mean())}

        torch.manual_seed(cfg.seed)
        model_cfg = self.model_config
        if self.model_config.embed_dim != clip.cfg.embed_dim:  # a tiny test config still embeds into clip's space
            model_cfg = dataclasses.replace(model_cfg, embed_dim=clip.cfg.embed_dim)
        tower = NoisyImageTower(model_cfg)
        if tuple(model_cfg.channels) == tuple(clip.cfg.image_channels):
            tower.load_clean_tower(clip.image)  # fine-tuned from the clean tower
        return Job(tower, [Phase("train", step_fn)], batch_fn, cfg,
                   {"initialised_from": "clip-birds image tower", "logit_scale": logit_scale})

    def tiny(self) -> "NoisyCLIPRecipe":
        small = dataclasses.replace(self.model_config, channels=(8, 16, 16), time_dim=32)
        return dataclasses.replace(self, model_config=small, batch_size=8, data=tiny_data(self.data))

    def score_fn(self, judge, captions, device):
        return clip_score(judge, embed_captions(frozen_clip(device), captions).to(device))

    @torch.no_grad()
    def evaluate(self, model, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """R-precision of noised test images against clip-birds caption embeddings at several t, then guided
        sampling. At t = 0 it is comparable with clip-birds' own R-precision."""

        options = self.options(options)
        test = self.data.load("test")
        device = model_device(model)
        g = torch.Generator().manual_seed(seed)
        chosen = torch.randint(10, (len(test),), generator=g)
        captions = [test.captions[i][int(chosen[i])] for i in range(len(test))]
        text_emb = embed_captions(frozen_clip(device), captions).to(device)
        metrics: dict[str, Any] = {}
        for level, x_t, t in self.noised_test_images(n, g, device):
            emb = torch.cat([model(x_t[s:s + 500], t[s:s + 500]) for s in range(0, len(x_t), 500)])
            result = r_precision_from_embeddings(emb.cpu(), text_emb[:len(x_t)].cpu(), text_emb.cpu(),
                                                 torch.arange(len(test)), 99, seed)
            metrics[f"r_precision_t{level}"] = result.r_precision
        return metrics | self.guided_metrics(model, n, seed, options)


def judge_config(kind: str):
    if kind == "classifier":
        return NoisyClassifierConfig()
    clip = CLIPConfig()
    return NoisyCLIPConfig(channels=clip.image_channels, embed_dim=clip.embed_dim)


PRESETS = [
    NoisyClassifierRecipe(
        "noisy-classifier-birds32", "noise-aware attribute classifier on q_sample'd train images, for classifier guidance",
        judge_config("classifier"), TrainConfig(steps=1000, lr=2e-3, warmup_steps=100, weight_decay=0.05,
                                                ema_decay=0.998, ema_warmup=True, seed=0), batch_size=128,
        # probe at N=100 over 0..300: attribute accuracy peaks at 30-100, FID-SB is lowest at 30
        sampling=JudgeSampling(guidance_scale=30.0)),
    NoisyCLIPRecipe(
        "noisy-clip-birds32", "clip-birds image tower fine-tuned on noisy images (text tower frozen), for CLIP guidance",
        judge_config("clip"), TrainConfig(steps=1000, lr=5e-4, warmup_steps=100, weight_decay=0.05,
                                          ema_decay=0.998, ema_warmup=True, seed=0), batch_size=128,
        # probe at N=100 over 10..1000: accuracy levels off from 200, FID-SB rises beyond
        sampling=JudgeSampling(guidance_scale=200.0)),
]
