"""Recipe of the bird evaluator, whose features define FID-SB and whose heads read attributes (chapter "How we
measure text-to-image models")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..data import BIRD_GROUPS, NUISANCE_GROUPS
from ..data.augment import batch_generator, random_flip, random_shift, to_unit_range
from ..metrics.evaluator import BirdEvaluator, EvaluatorConfig
from ..train import Phase, TrainConfig
from .base import Job, Recipe, tiny_data


@dataclass
class EvaluatorRecipe(Recipe):
    family: ClassVar[str] = "evaluator"
    role: ClassVar[str] = "evaluator"
    model_class: ClassVar[type] = BirdEvaluator

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.require("attribute_index", "nuisances", preset=self.name)
        images, species, attrs = data.images, data.species, data.attribute_index
        nuisances = torch.stack([data.nuisances[g] for g in NUISANCE_GROUPS], 1)  # (N, nuisance groups)
        facing = list(NUISANCE_GROUPS).index("facing")
        batch_size = self.batch_size

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x, flipped = random_flip(to_unit_range(images[idx]), g)
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
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size)
        return Job(BirdEvaluator(model_cfg), [Phase("train", step_fn)], batch_fn, cfg)

    def tiny(self) -> "EvaluatorRecipe":
        return dataclasses.replace(self, model_config=EvaluatorConfig(channels=(8, 16, 16), feature_dim=32),
                                   batch_size=8, data=tiny_data(self.data))

    @torch.no_grad()
    def evaluate(self, model: BirdEvaluator, n: int | None = None, seed: int = 0,
                 options: Any = None) -> dict[str, Any]:
        """Accuracy of every head on real test images."""
        self.options(options)
        test = self.data.load("test")
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


PRESETS = [
    EvaluatorRecipe(
        "evaluator-birds", "species + attribute classifier on real SynthBirds-200 training images (FID-SB features)",
        EvaluatorConfig(), TrainConfig(steps=3000, lr=2e-3, warmup_steps=100, weight_decay=0.05, ema_decay=0.998,
                                       seed=0), batch_size=128),
]
