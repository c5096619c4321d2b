"""What one `t2ilab compare` run measures: the points (each model's defaults, each value of its recipe's knobs)
and the key a measured point is cached under. What a point costs, its recipe says (`network_evaluations`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any
from .. import zoo
from ..metrics.protocol import judge_versions as versions
from ..recipes import PRESETS, get_preset, sweep_values

SLOW_NFE = 400  # points that take more network evaluations per image than this are measured at the slow N
QUALITY = ("fid_sb", "kid", "precision", "recall", "density", "coverage", "attribute_accuracy",
           "judge_attribute_accuracy", "r_precision", "nearest_train_ratio")
PROTOCOL_VERSION = 2  # bump when the measurement itself changes, so that old cached points are not reused
UNSEEN = ("attribute_accuracy", "judge_attribute_accuracy", "fid_sb", "coverage", "r_precision")  # per split


@dataclasses.dataclass(frozen=True)
class Point:
    """One measurement: a released model, sampling options that differ from its defaults, and the N to use."""

    model: str
    options: tuple[tuple[str, Any], ...]  # sorted (name, value) pairs; () for the model's defaults
    n: int
    kind: str  # "main" (the table) or "sweep" (a knob setting)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options) or "defaults"


def plan(models: list[str], n: int, sweep_n: int, slow_n: int, sweeps: bool = True) -> list[Point]:
    """The points of a run: each model's defaults at N, and each knob value at the sweep N (at the slow N where a
    setting costs more than SLOW_NFE network evaluations per image)."""

    points = []
    for name in models:
        points.append(Point(name, (), n, "main"))
        recipe = get_preset(name)
        if not sweeps:
            continue
        if recipe.role != "generator":  # a guided sampler: its defaults at the sweep N, beside the knob curves
            points.append(Point(name, (), sweep_n, "sweep"))
            continue
        defaults = recipe.options(None)
        if defaults is None:
            continue
        seen = set()
        for option, values in sweep_values(defaults).items():  # the recipe's knobs (recipes.knob)
            for value in values:
                options = recipe.options({option: value})
                changed = tuple((f.name, getattr(options, f.name)) for f in dataclasses.fields(options)
                                if getattr(options, f.name) != getattr(defaults, f.name))
                if changed in seen:  # the default value of several knobs is one point
                    continue
                seen.add(changed)
                cost = recipe.network_evaluations(options)
                points.append(Point(name, changed, slow_n if cost > SLOW_NFE else sweep_n, "sweep"))
    return points


def cache_key(point: Point, sha256: str, seed: int, threads: int, device: str, judges: dict[str, str]) -> str:
    settings = {"model": point.model, "sha256": sha256, "options": [list(o) for o in point.options], "n": point.n,
                "seed": seed, "threads": threads, "device": device, "judges": judges, "batch": 100,
                "version": PROTOCOL_VERSION}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def judge_versions() -> dict[str, str]:
    """The sha256 of each judge the protocol uses: a retrained judge invalidates every cached point."""

    return versions()


def released_generators(guided: bool = True) -> list[str]:
    """The released models that draw: the generators, then (with `guided`) the judges whose guidance turns the
    unconditional U-Net into a text-to-image sampler (classifier and CLIP guidance)."""

    roles = ("generator", "judge") if guided else ("generator",)
    names = [name for name in zoo.available() if name in PRESETS and PRESETS[name].role in roles]
    return sorted(names, key=lambda name: roles.index(PRESETS[name].role))
