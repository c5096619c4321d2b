"""Data: SynthBirds-200 (the default), real CUB-200-2011, captions and tokenizers (chapter "Birds, captions and tokens")."""
from __future__ import annotations

import os
from typing import Literal

from .attributes import BIRD_GROUPS, COLORS, NUISANCE_GROUPS
from .captions import make_caption, parse_attributes
from .synthbirds import BirdItem, SynthBirds, t2ilab_home

DatasetName = Literal["synthbirds", "cub"]


def load_dataset(name: DatasetName = "synthbirds", split: Literal["train", "test"] = "train", image_size: int = 32,
                 root: str | os.PathLike | None = None, **kwargs):
    """The course's data switch: "synthbirds" (generated, the default) or "cub" (real CUB-200-2011 on disk).

    For "cub", `root` is the CUB_200_2011 folder, or the environment variable T2ILAB_CUB_ROOT."""
    if name == "synthbirds":
        return SynthBirds(split, image_size=image_size, root=root, **kwargs)
    if name == "cub":
        from .cub import CUB200

        root = root or os.environ.get("T2ILAB_CUB_ROOT")
        if root is None:
            raise ValueError("dataset 'cub' needs root= or T2ILAB_CUB_ROOT pointing at the CUB_200_2011 folder")
        return CUB200(root, split, image_size=image_size, **kwargs)
    raise ValueError(f"dataset must be 'synthbirds' or 'cub', got {name!r}")


__all__ = ["BIRD_GROUPS", "COLORS", "NUISANCE_GROUPS", "BirdItem", "SynthBirds", "load_dataset", "make_caption",
           "parse_attributes", "t2ilab_home"]
