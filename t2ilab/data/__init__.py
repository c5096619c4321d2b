"""Data: SynthBirds-200 (the default), real CUB-200-2011, captions and tokenizers (chapter "Birds, captions and tokens")."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from .attributes import BIRD_GROUPS, COLORS, NUISANCE_GROUPS
from .captions import make_caption, parse_attributes
from .synthbirds import BirdItem, SynthBirds, t2ilab_home
from .cub import CUB200

DatasetName = Literal["synthbirds", "cub"]


def load_dataset(name: DatasetName = "synthbirds", split: Literal["train", "test"] = "train", image_size: int = 32,
                 root: str | os.PathLike | None = None, **kwargs):
    """The course's data switch: "synthbirds" (generated, the default) or "cub" (real CUB-200-2011 on disk).

    For "cub", `root` is the CUB_200_2011 folder, or the environment variable T2ILAB_CUB_ROOT."""
    if name == "synthbirds":
        return SynthBirds(split, image_size=image_size, root=root, **kwargs)
    if name == "cub":
        root = root or os.environ.get("T2ILAB_CUB_ROOT")
        if root is None:
            raise ValueError("dataset 'cub' needs root= or T2ILAB_CUB_ROOT pointing at the CUB_200_2011 folder")
        return CUB200(root, split, image_size=image_size, **kwargs)
    raise ValueError(f"dataset must be 'synthbirds' or 'cub', got {name!r}")


@dataclass(frozen=True)
class DataConfig:
    """What a preset trains on: the data set, the image size it is read at, and (SynthBirds) the data seed.

    Every data set returned by `load` has `images` (N, 3, S, S) uint8 and `captions` (N tuples of strings);
    SynthBirds also has the attribute and nuisance labels the evaluator and the judges train on."""

    dataset: DatasetName = "synthbirds"
    image_size: int = 32
    seed: int = 0
    limit: int | None = None  # only the first `limit` images of each split (tiny test configs)

    def load(self, split: Literal["train", "test"] = "train"):
        if self.dataset == "synthbirds":
            data = load_dataset("synthbirds", split, self.image_size, seed=self.seed)
        else:
            data = load_dataset(self.dataset, split, self.image_size)
        return data if self.limit is None else _first(data, self.limit)

    def require(self, *fields: str, preset: str = "this preset"):
        """The training split, refused with a clear message when it lacks labels the preset needs."""
        data = self.load("train")
        missing = [f for f in fields if not hasattr(data, f)]
        if missing:
            raise ValueError(f"{preset} needs {missing}, which dataset {self.dataset!r} does not provide; "
                             f"train it on 'synthbirds'")
        return data


def _first(data, limit: int):
    """A shallow copy of a loaded split with only its first `limit` images (and their labels)."""
    import copy

    part = copy.copy(data)
    for name in ("images", "captions", "species", "attribute_index", "bbox", "ids", "paths", "boxes"):
        if name in vars(data) or name in type(data).__dict__:
            setattr(part, name, getattr(data, name)[:limit])
    if hasattr(data, "nuisances"):
        part.nuisances = {k: v[:limit] for k, v in data.nuisances.items()}
    return part


__all__ = ["BIRD_GROUPS", "COLORS", "NUISANCE_GROUPS", "BirdItem", "DataConfig", "SynthBirds", "load_dataset", "make_caption",
           "parse_attributes", "t2ilab_home"]
