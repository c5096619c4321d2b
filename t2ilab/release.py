"""A training run's bookkeeping for `t2ilab train`: whether a checkpoint may be resumed, which commits trained it,
leftovers of interrupted checkpoint writes, and the model card a release writes beside its weights."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from .errors import UsageError
from . import zoo
from .nn import count_parameters
from .train import load_checkpoint
from .train.loop import config_differences


def plain(config) -> dict:
    """A config dataclass as JSON-ready values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def check_resumable(checkpoint: Path, identity: dict, steps: int) -> None:
    """Refuse to resume a checkpoint of another preset or model config, or one already past `steps`."""

    state = load_checkpoint(checkpoint)
    saved = {k: state.get("extra", {}).get(k) for k in identity}
    if saved["preset"] is not None and saved["preset"] != identity["preset"]:
        raise UsageError(f"{checkpoint} is a checkpoint of preset {saved['preset']!r}, not {identity['preset']!r}; "
                         f"use another --out, or --no-resume to start over")
    if saved["model_config"] is not None and saved["model_config"] != identity["model_config"]:
        differing = config_differences(saved["model_config"], identity["model_config"])
        raise UsageError(f"{checkpoint} was trained with another model config ({'; '.join(differing)}); "
                         f"use --no-resume to start over under the preset's current config")
    if state["step"] > steps:
        raise UsageError(f"{checkpoint} has already trained {state['step']} steps, more than the {steps} asked; "
                         f"ask for --steps {state['step']} or more, or start over with --no-resume")


def remove_interrupted_writes(checkpoint: Path) -> None:
    """Temporary files of checkpoint writes whose process is gone (an interrupted run leaves one behind)."""
    for tmp in checkpoint.parent.glob(checkpoint.name + ".tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[-1]
        if not (pid.isdigit() and process_alive(int(pid))):
            tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def training_commits(checkpoint: Path, resume: bool, steps: int, commit: str) -> list[str]:
    """Commits recorded by earlier runs of this checkpoint, plus `commit` if this run will train more steps."""

    if not (resume and checkpoint.exists()):
        return [commit]
    state = load_checkpoint(checkpoint)
    earlier = list(state.get("extra", {}).get("commits", []))
    if state["step"] < steps and commit not in earlier:
        earlier.append(commit)
    return earlier


def model_card(preset, job, result, final, metrics: dict, *, command: str, commit: str, commits: list[str],
               device: str, world: int) -> dict[str, Any]:
    """The card of a released model: how it was trained (command, commits, wall time, machine, configs) and what
    it measured."""

    return {"description": preset.description, "family": preset.family, "role": preset.role,
            "command": command, "commit": commit, "training_commits": commits,
            "wall_seconds": round(result.wall_seconds, 1), "machine": zoo.machine_description(device),
            "steps": result.steps, "parameters": count_parameters(final),
            "train_config": plain(job.config), "batch_size": preset.batch_size, "world_size": world,
            "data": plain(preset.data), "weights_from": "ema" if result.ema is not None else "model",
            "final_loss": result.history[-1]["loss"], "metrics": metrics, **job.card_extra}


def variant_label(given: dict, options, metrics: dict) -> str:
    """The card key of an evaluation with non-default settings, from the parsed options: "guidance_scale=3.0-n=300",
    or "n=300" for the default options at another N."""
    return "-".join([f"{k}={getattr(options, k)}" for k in sorted(given)] + [f"n={metrics['n']}"])
