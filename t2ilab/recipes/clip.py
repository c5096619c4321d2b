"""Recipe of mini-CLIP, the text encoder every family reads and the R-precision judge (chapter "How we measure")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..clip import CLIPConfig, MiniCLIP, embed_captions, embed_images
from ..data import synthbirds
from ..data.augment import augment, batch_generator, to_unit_range
from ..train import Phase, TrainConfig
from .base import Job, Recipe, tiny_data
from ..metrics.alignment import oracle_r_precision, r_precision_from_embeddings, unambiguous_share


@dataclass
class CLIPRecipe(Recipe):
    family: ClassVar[str] = "clip"
    role: ClassVar[str] = "text encoder"
    model_class: ClassVar[type] = MiniCLIP

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        tokenizer = synthbirds.word_tokenizer(max_length=self.model_config.max_length)
        model_cfg = dataclasses.replace(self.model_config, vocab_size=len(tokenizer), pad_id=tokenizer.pad_id)
        all_ids = tokenizer.encode_per_image(data.captions)  # (N, 10, T)
        images, batch_size = data.images, self.batch_size  # (N, 3, S, S) uint8

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            return augment(to_unit_range(images[idx]), g), all_ids[idx, which]

        def step_fn(model, batch):
            out = model(*batch)
            return out.loss, {"batch_acc": float(out.accuracy)}

        card_extra = {"tokenizer": {"vocab": tokenizer.vocab, "max_length": tokenizer.max_length}}
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        model = MiniCLIP(model_cfg)
        model.tokenizer = tokenizer  # as `zoo.load` attaches it; evaluation encodes captions with it
        return Job(model, [Phase("train", step_fn)], batch_fn, cfg, card_extra)

    def tiny(self) -> "CLIPRecipe":
        small = CLIPConfig(text_dim=32, text_layers=1, text_heads=2, image_channels=(8, 16, 16), embed_dim=16)
        return dataclasses.replace(self, model_config=small, batch_size=8, data=tiny_data(self.data))

    def evaluate(self, model: MiniCLIP, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """R-precision on real test pairs: each test image's caption among itself and 99 other test captions."""

        self.options(options)  # mini-CLIP draws nothing: any option is refused
        test = self.data.load("test")
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


PRESETS = [
    CLIPRecipe("clip-birds", "mini-CLIP text and image towers, contrastive on SynthBirds-200 train pairs",
               CLIPConfig(), TrainConfig(steps=2000, lr=1e-3, warmup_steps=100, weight_decay=0.05, ema_decay=0.998,
                                         seed=0), batch_size=128),
]
