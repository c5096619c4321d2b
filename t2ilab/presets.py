"""Named training presets: what `t2ilab train PRESET` builds, trains and (with --release) evaluates and releases.

A preset bundles a model config, a `TrainConfig`, the batch and step functions the loop needs, and the
evaluation whose metrics go into the model card. The table `PRESETS` lists them; `t2ilab zoo list` shows what
has been released.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .clip import CLIPConfig, MiniCLIP
from .data import BIRD_GROUPS, SynthBirds, synthbirds
from .metrics.evaluator import BirdEvaluator, EvaluatorConfig
from .train import TrainConfig


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


@dataclass
class Job:
    """Everything `train` needs for one preset."""

    model: nn.Module
    step_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
    batch_fn: Callable[[int, int, int], Any]
    config: TrainConfig
    card_extra: dict[str, Any]


@dataclass
class Preset:
    name: str
    description: str
    model_config: Any
    train_config: TrainConfig
    batch_size: int

    def build(self, **overrides) -> Job:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------------------
# mini-CLIP
# --------------------------------------------------------------------------------------------------------------

class CLIPPreset(Preset):
    def build(self, **overrides) -> Job:
        cfg = dataclasses.replace(self.train_config, **overrides)
        data = SynthBirds("train", image_size=32)
        tokenizer = synthbirds.word_tokenizer(max_length=self.model_config.max_length)
        model_cfg = dataclasses.replace(self.model_config, vocab_size=len(tokenizer), pad_id=tokenizer.pad_id)
        all_ids = torch.stack([tokenizer.encode_batch(list(c)) for c in data.captions])  # (N, 10, T)
        images = data.images  # (N, 3, 32, 32) uint8
        batch_size = self.batch_size

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            x = augment(images[idx].float() / 127.5 - 1.0, g)
            return x, all_ids[idx, which]

        def step_fn(model, batch):
            out = model(*batch)
            return out.loss, {"batch_acc": float(out.accuracy)}

        card_extra = {"tokenizer": {"vocab": tokenizer.vocab, "max_length": tokenizer.max_length}}
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        model = MiniCLIP(model_cfg)
        model.tokenizer = tokenizer  # as `zoo.load` attaches it; evaluation encodes captions with it
        return Job(model, step_fn, batch_fn, cfg, card_extra)

    def evaluate(self, model: MiniCLIP, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        """R-precision on real test pairs: each test image's caption among itself and 99 other test captions."""
        from .metrics.alignment import (embed_captions, embed_images, oracle_r_precision,
                                        r_precision_from_embeddings, unambiguous_share)

        test = SynthBirds("test", image_size=32)
        count = n or len(test)
        g = torch.Generator().manual_seed(seed)
        chosen = torch.randint(10, (len(test),), generator=g)
        captions = [test.captions[i][int(chosen[i])] for i in range(len(test))]
        image_emb = embed_images(model, test.image_tensor(torch.arange(count)))
        text_emb = embed_captions(model, captions)
        owner = torch.arange(len(test))
        result = r_precision_from_embeddings(image_emb, text_emb[:count], text_emb, owner, 99, seed)
        truth = [test.species_table[int(s)].attributes for s in test.species[:count]]
        return {"r_precision": result.r_precision,
                "oracle_r_precision": oracle_r_precision(truth, captions[:count], captions, 99, seed, owner),
                "unambiguous_trials": unambiguous_share(truth, captions[:count], captions, 99, seed, owner),
                "n": count, "seed": seed, "distractors": 99, "split": "test"}


# --------------------------------------------------------------------------------------------------------------
# The bird evaluator
# --------------------------------------------------------------------------------------------------------------

class EvaluatorPreset(Preset):
    def build(self, **overrides) -> Job:
        from .data import NUISANCE_GROUPS

        cfg = dataclasses.replace(self.train_config, **overrides)
        data = SynthBirds("train", image_size=32)
        images, species, attrs = data.images, data.species, data.attribute_index
        nuisances = torch.stack([data.nuisances[g] for g in NUISANCE_GROUPS], 1)  # (N, nuisance groups)
        facing = list(NUISANCE_GROUPS).index("facing")
        batch_size = self.batch_size

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x, flipped = random_flip(images[idx].float() / 127.5 - 1.0, g)
            labels = nuisances[idx].clone()
            labels[:, facing] = torch.where(flipped, 1 - labels[:, facing], labels[:, facing])  # a mirror faces away
            return random_shift(x, g), species[idx], attrs[idx], labels

        def step_fn(model, batch):
            images, species, attrs, nuisance = batch
            out = model(images)
            loss = F.cross_entropy(out.species_logits, species)
            loss = loss + sum(F.cross_entropy(out.attribute_logits[g], attrs[:, j]) for j, g in enumerate(BIRD_GROUPS))
            loss = loss + sum(F.cross_entropy(out.nuisance_logits[g], nuisance[:, j])
                              for j, g in enumerate(NUISANCE_GROUPS))
            accuracy = (out.species_logits.argmax(1) == species).float().mean()
            return loss, {"species_acc": float(accuracy)}

        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        return Job(BirdEvaluator(self.model_config), step_fn, batch_fn, cfg, {})

    @torch.no_grad()
    def evaluate(self, model: BirdEvaluator, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Accuracy of every head on real test images."""
        from .data import NUISANCE_GROUPS

        test = SynthBirds("test", image_size=32)
        count = n or len(test)
        images = test.image_tensor(torch.arange(count))
        _, species, attrs = model.predict(images)
        metrics = {"species_accuracy": float((species == test.species[:count]).float().mean())}
        for j, group in enumerate(BIRD_GROUPS):
            metrics[f"{group}_accuracy"] = float((attrs[:, j] == test.attribute_index[:count, j]).float().mean())
        model.eval()
        outs = [model(images[s: s + 512]) for s in range(0, count, 512)]
        for group in NUISANCE_GROUPS:
            predicted = torch.cat([o.nuisance_logits[group].argmax(1) for o in outs])
            metrics[f"nuisance_{group}_accuracy"] = float((predicted == test.nuisances[group][:count]).float().mean())
        metrics.update(n=count, split="test")
        return metrics


# --------------------------------------------------------------------------------------------------------------
# Diffusion (unconditional, and text-conditional with condition dropout for classifier-free guidance)
# --------------------------------------------------------------------------------------------------------------

@dataclass
class DiffusionPreset(Preset):
    schedule: str = "linear"
    condition_dropout: float = 0.15  # share of captions replaced by the null condition (CFG training)
    guidance_scale: float = 3.0  # used by `evaluate` for text-conditional models
    sample_steps: int = 50  # DDIM steps used by `evaluate`

    @property
    def conditional(self) -> bool:
        return self.model_config.word_dim is not None

    def build(self, **overrides) -> Job:
        from . import zoo
        from .diffusion import UNet, get_schedule, noise_prediction_loss
        from .diffusion.pipeline import condition_from_ids

        cfg = dataclasses.replace(self.train_config, **overrides)
        images = SynthBirds("train", image_size=32).images
        schedule = get_schedule(self.schedule)
        batch_size, conditional, drop_share = self.batch_size, self.conditional, self.condition_dropout
        clip = all_ids = None
        if conditional:
            clip = zoo.load("clip-birds", device=cfg.device).requires_grad_(False)
            captions = SynthBirds("train", image_size=32).captions
            all_ids = torch.stack([clip.tokenizer.encode_batch(list(c)) for c in captions])  # (N, 10, T)

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x = augment(images[idx].float() / 127.5 - 1.0, g, max_shift=0.0)  # flips only: birds face both ways
            if not conditional:
                return (x,)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            return x, all_ids[idx, which], torch.rand(batch_size, generator=g) < drop_share

        def step_fn(model, batch):
            if conditional:
                x, ids, dropped = batch
                condition = condition_from_ids(clip, ids, dropped)
                return noise_prediction_loss(lambda x_t, t: model(x_t, t, condition), x, schedule), {}
            return noise_prediction_loss(lambda x_t, t: model(x_t, t), batch[0], schedule), {}

        torch.manual_seed(cfg.seed)
        return Job(UNet(self.model_config), step_fn, batch_fn, cfg, {"schedule": self.schedule,
                                                                      "condition_dropout": drop_share})

    def model_fn(self, unet, device: str = "cpu", guidance_scale: float | None = None, steps: int | None = None):
        """captions, generator -> images: DDIM sampling (with CFG for text-conditional U-Nets)."""
        from . import zoo
        from .diffusion import ddim_sample, get_schedule
        from .diffusion.pipeline import encode_captions, text_model_fn, unconditional_model_fn

        schedule = get_schedule(self.schedule)
        clip = zoo.load("clip-birds", device=device) if self.conditional else None
        scale = self.guidance_scale if guidance_scale is None else guidance_scale

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            fn = (text_model_fn(unet, encode_captions(clip, captions, device), scale) if clip is not None
                  else unconditional_model_fn(unet))
            return ddim_sample(fn, (len(captions), 3, 32, 32), schedule, steps or self.sample_steps,
                               generator=generator, device=device)

        return generate

    def evaluate(self, model, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        from .metrics import evaluate
        from .nn import count_parameters

        device = str(next(model.parameters()).device)
        result = evaluate(self.model_fn(model, device), n=n or 2000, seed=seed, parameters=count_parameters(model),
                          device=device)
        return result.to_dict() | {"sampler": f"DDIM {self.sample_steps} steps, eta 0",
                                   "guidance_scale": self.guidance_scale if self.conditional else None}


def _unet_config(conditional: bool):
    from .diffusion import UNetConfig

    clip = CLIPConfig()
    # (32, 64, 96) channels: about 1 s per batch of 64 on two CPU cores, so 2,400 steps fit in 45 minutes
    return UNetConfig(channels=(32, 64, 96), word_dim=clip.text_dim if conditional else None,
                      sentence_dim=clip.embed_dim if conditional else None)


PRESETS: dict[str, Preset] = {
    "clip-birds": CLIPPreset(
        "clip-birds", "mini-CLIP text and image towers, contrastive on SynthBirds-200 train pairs",
        CLIPConfig(), TrainConfig(steps=2000, lr=1e-3, warmup_steps=100, weight_decay=0.05, ema_decay=0.998, seed=0), batch_size=128),
    "evaluator-birds": EvaluatorPreset(
        "evaluator-birds", "species + attribute classifier on real SynthBirds-200 training images (FID-SB features)",
        EvaluatorConfig(), TrainConfig(steps=3000, lr=2e-3, warmup_steps=100, weight_decay=0.05, ema_decay=0.998, seed=0),
        batch_size=128),
    "diffusion-uncond-birds32": DiffusionPreset(
        "diffusion-uncond-birds32", "unconditional DDPM U-Net on SynthBirds-200 train images, 32x32",
        _unet_config(False), TrainConfig(steps=2400, lr=8e-4, warmup_steps=200, weight_decay=0.0, ema_decay=0.999,
                                         seed=0), batch_size=64),
    "diffusion-text-birds32": DiffusionPreset(
        "diffusion-text-birds32", "text-conditional DDPM U-Net (frozen clip-birds text tower, 15% condition dropout)",
        _unet_config(True), TrainConfig(steps=2400, lr=8e-4, warmup_steps=200, weight_decay=0.0, ema_decay=0.999,
                                        seed=0), batch_size=64),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
