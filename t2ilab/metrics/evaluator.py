"""The bird evaluator: a classifier whose features define FID-SB and whose heads read attributes off images.

Chapter "How we measure text-to-image models". FID (Heusel et al., 2017) compares Inception-v3 features of real
and generated images; Inception weights cannot be downloaded here and know nothing of our birds, so the course
trains its own feature extractor on real SynthBirds training images: a residual CNN with a species head, one
head per attribute group, and one head per nuisance group (facing, pose, background, perch). Its penultimate
features (`features`, 256-d) are the space of FID-SB, KID, precision/recall, density/coverage and the memorisation
check; its attribute heads give attribute accuracy.

Why the nuisance heads: a classifier trained only on species and attributes learns to *ignore* pose and
background, so in its feature space every image of a species looks alike, and a generator that draws each
species in one fixed pose would keep full recall. Inception features see such variety; ours must be taught to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from ..data.attributes import BIRD_GROUPS, NUISANCE_GROUPS
from ..nn import ConvEncoder
from ..registry import register_model


@dataclass
class EvaluatorConfig:
    image_size: int = 32  # the protocol's resolution: every generator's images are resized to it (metrics.protocol)
    channels: tuple[int, ...] = (32, 64, 128)  # at 32, 16 and 8 pixels
    blocks_per_stage: int = 1
    feature_dim: int = 256
    num_species: int = 200
    groups: dict[str, int] = field(default_factory=lambda: {g: len(v) for g, v in BIRD_GROUPS.items()})
    nuisance_groups: dict[str, int] = field(default_factory=lambda: {g: len(v) for g, v in NUISANCE_GROUPS.items()})
    dropout: float = 0.1
    # how the last feature map becomes one vector: "mean" (fid-birds) or "mean+max", the mean and the maximum of each
    # channel side by side, so that a part a few pixels wide (a bill) is not averaged away over the whole map
    pooling: str = "mean"


POOLINGS = ("mean", "mean+max")


class MeanMaxPool(nn.Module):
    """(B, C, H, W) -> (B, 2C): each channel's mean and maximum over the map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)


class EvaluatorOutput(NamedTuple):
    features: torch.Tensor  # (B, feature_dim)
    species_logits: torch.Tensor  # (B, num_species)
    attribute_logits: dict[str, torch.Tensor]  # group -> (B, values)
    nuisance_logits: dict[str, torch.Tensor]  # nuisance group -> (B, values)


@register_model
class BirdEvaluator(nn.Module):
    """Images (B, 3, image_size, image_size) in [-1, 1] -> features and species/attribute logits."""

    config_class = EvaluatorConfig

    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.cfg = cfg
        chans = cfg.channels
        self.body = ConvEncoder(chans, blocks_per_level=cfg.blocks_per_stage, downsample_last=False)
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {cfg.pooling!r}")
        pooled = chans[-1] * (2 if cfg.pooling == "mean+max" else 1)
        pool = nn.AdaptiveAvgPool2d(1) if cfg.pooling == "mean" else MeanMaxPool()
        self.to_features = nn.Sequential(nn.GroupNorm(8, chans[-1]), nn.SiLU(), pool, nn.Flatten(),
                                         nn.Linear(pooled, cfg.feature_dim), nn.SiLU())
        self.dropout = nn.Dropout(cfg.dropout)
        self.species_head = nn.Linear(cfg.feature_dim, cfg.num_species)
        self.attribute_heads = nn.ModuleDict({g: nn.Linear(cfg.feature_dim, n) for g, n in cfg.groups.items()})
        self.nuisance_heads = nn.ModuleDict({g: nn.Linear(cfg.feature_dim, n) for g, n in cfg.nuisance_groups.items()})

    def forward(self, images: torch.Tensor) -> EvaluatorOutput:
        size = self.cfg.image_size
        if images.dim() != 4 or images.shape[1:] != (3, size, size):
            raise ValueError(f"the evaluator reads (B, 3, {size}, {size}) images in [-1, 1], got {tuple(images.shape)}; "
                             f"metrics.protocol.to_protocol_size resizes generated images")
        features = self.to_features(self.body(images))
        h = self.dropout(features)
        return EvaluatorOutput(features, self.species_head(h), {g: head(h) for g, head in self.attribute_heads.items()},
                               {g: head(h) for g, head in self.nuisance_heads.items()})

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eval-mode, batched: features (N, D), species (N,), attribute value indices (N, groups)."""
        was_training = self.training
        self.eval()
        feats, species, attrs = [], [], []
        device = next(self.parameters()).device
        for start in range(0, len(images), batch_size):
            out = self(images[start: start + batch_size].to(device))
            feats.append(out.features.float().cpu())
            species.append(out.species_logits.argmax(1).cpu())
            attrs.append(torch.stack([out.attribute_logits[g].argmax(1) for g in self.cfg.groups], 1).cpu())
        self.train(was_training)
        return torch.cat(feats), torch.cat(species), torch.cat(attrs)
