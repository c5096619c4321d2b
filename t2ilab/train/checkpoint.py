"""Resumable training checkpoints: model, EMA, optimizer, step, RNG state and history in one file.

Written with `torch.save` to a temporary file and then renamed over the old one, so an interruption at any
moment leaves either the previous checkpoint or the new one, never half of one. Loaded with
`weights_only=True`: a checkpoint holds tensors and plain Python values only. Released weights are a different
format (safetensors + JSON card, see `t2ilab.zoo`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write `state` (tensors, dicts, lists, numbers, strings) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged files
        raise RuntimeError(f"checkpoint {path} is damaged or not a t2ilab checkpoint: {err}") from err


def rng_state() -> dict[str, Any]:
    """Torch's CPU (and, if present, CUDA) generator states."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
