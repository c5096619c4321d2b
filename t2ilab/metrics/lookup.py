"""Lookup rows: "generators" that draw nothing and return a training image for each caption (chapter "How we
measure text-to-image models"; `t2ilab compare`).

They are measured by the protocol exactly like generators, on both splits, and bound what copying can score:

- `lookup-random`: any training image (the floor: realism without alignment);
- `lookup-clip`: the training image whose mini-CLIP image embedding is nearest the caption's text embedding;
- `lookup-oracle`: a training image with as many of the caption's stated attributes as possible (read by the
  caption parser; ties drawn at random). On the seen split it has every stated attribute; on the unseen split
  no training image can (no species has them all), so a generator above `lookup-oracle` there composes.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..data import BIRD_GROUPS, SynthBirds, parse_attributes
from .alignment import embed_captions, embed_images
from .protocol import evaluate_splits, load_judges

LOOKUPS = ("lookup-random", "lookup-clip", "lookup-oracle")
LookupFn = Callable[[list[str], torch.Generator], torch.Tensor]


def stated_codes(captions: list[str]) -> torch.Tensor:
    """(N, 8) value index of each group a caption states, -1 where it states none."""
    groups = list(BIRD_GROUPS)
    out = torch.full((len(captions), len(groups)), -1, dtype=torch.long)
    for i, caption in enumerate(captions):
        for group, value in parse_attributes(caption).items():
            out[i, groups.index(group)] = BIRD_GROUPS[group].index(value)
    return out


def oracle_choice(captions: list[str], train_codes: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For each caption, a random one of the training rows (codes (M, 8)) that share the most stated attributes."""
    stated = stated_codes(captions)  # (N, 8)
    matches = ((train_codes[None] == stated[:, None]) & (stated[:, None] >= 0)).sum(-1)  # (N, M)
    best = matches == matches.max(1, keepdim=True).values
    noise = torch.rand(best.shape, generator=g)  # a uniform draw among the best rows
    return torch.where(best, noise, -1.0).argmax(1)


def nearest_by_embedding(text_embeddings: torch.Tensor, image_embeddings: torch.Tensor) -> torch.Tensor:
    """Index of the image embedding (M, D) of highest cosine similarity to each text embedding (N, D)."""
    text = torch.nn.functional.normalize(text_embeddings, dim=-1)
    image = torch.nn.functional.normalize(image_embeddings, dim=-1)
    return (text @ image.T).argmax(1)


def lookup(name: str, train: SynthBirds | None = None, clip=None) -> LookupFn:
    """The lookup row `name` as a protocol model function: (captions, generator) -> training images in [-1, 1]."""
    if name not in LOOKUPS:
        raise ValueError(f"unknown lookup {name!r}; known: {LOOKUPS}")
    train = train or SynthBirds("train", image_size=32)
    images = train.image_tensor()
    if name == "lookup-random":
        return lambda captions, g: images[torch.randint(len(images), (len(captions),), generator=g)]
    if name == "lookup-oracle":
        codes = train.attribute_index
        return lambda captions, g: images[oracle_choice(captions, codes, g)]

    if clip is None:
        clip = load_judges().clip
    image_embeddings = embed_images(clip, images)
    return lambda captions, g: images[nearest_by_embedding(embed_captions(clip, captions), image_embeddings)]


def measure_lookups(n: int = 2000, seed: int = 0, progress: bool = False) -> dict[str, dict]:
    """Every lookup row measured by the protocol on both splits ({name: metrics, unseen under "unseen"})."""

    return {name: evaluate_splits(lookup(name), n, seed, progress=progress) | {"generator": name}
            for name in LOOKUPS}
