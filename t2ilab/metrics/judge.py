"""The second attribute judge: an independent check on the evaluator's attribute accuracy (chapter "How we
measure text-to-image models").

Attribute accuracy is read off images by `evaluator-birds`, a residual CNN with group norm trained on clean real
birds. A generator steered by the gradient of a similar classifier (classifier guidance) can learn to please such
a network rather than to draw the bird, and a decoder's blur or a sampler's leftover noise can fool it the other
way. So the protocol asks a second judge that shares neither its architecture nor its recipe:

- a plain VGG-style network (Simonyan & Zisserman, 2015): pairs of 3x3 convolutions with batch norm and ReLU,
  max-pooling between stages, global average and max pooling concatenated, one linear head per attribute group;
  no residuals, no group norm, no species or nuisance heads;
- trained with label smoothing and its own augmentations: crops of a reflect-padded image, and, for three
  quarters of each batch, one of three degradations that generated images carry: Gaussian blur, Gaussian noise,
  or a round trip through the image tokenizer (the decoder artefacts of the token models).

The judge's card reports attribute accuracy on real test images clean, blurred, noised and tokenized, for itself
and for the evaluator: the two should agree on clean images, and a judge should lose little on degraded ones,
since attribute accuracy asks whether the attribute is there, not how clean the image is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.attributes import BIRD_GROUPS
from ..registry import register_model


@dataclass
class AttributeJudgeConfig:
    image_size: int = 32
    channels: tuple[int, ...] = (32, 64, 128)  # two convolutions per stage, at 32, 16 and 8 pixels
    groups: dict[str, int] = field(default_factory=lambda: {g: len(v) for g, v in BIRD_GROUPS.items()})
    dropout: float = 0.3


@register_model
class AttributeJudge(nn.Module):
    """Images (B, 3, S, S) in [-1, 1] -> attribute logits per group."""

    config_class = AttributeJudgeConfig

    def __init__(self, cfg: AttributeJudgeConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = 3
        for stage, c in enumerate(cfg.channels):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            if stage + 1 < len(cfg.channels):
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleDict({g: nn.Linear(2 * c_in, n) for g, n in cfg.groups.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        size = self.cfg.image_size
        if images.dim() != 4 or images.shape[1:] != (3, size, size):
            raise ValueError(f"the attribute judge reads (B, 3, {size}, {size}) images in [-1, 1], got "
                             f"{tuple(images.shape)}; metrics.protocol.to_protocol_size resizes generated images")
        h = self.body(images)
        pooled = self.dropout(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))
        return {g: head(pooled) for g, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Eval-mode, batched: attribute value indices (N, groups), groups in `BIRD_GROUPS` order."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            logits = self(images[start: start + batch_size].to(device))
            out.append(torch.stack([logits[g].argmax(1) for g in self.cfg.groups], 1).cpu())
        self.train(was_training)
        return torch.cat(out)
