"""What one `t2ilab compare` run measures: the points (each model's defaults, each knob value swept), what each
costs in network evaluations, and the key a measured point is cached under."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

# the knob values swept per sampling option (each point changes one option from the model's defaults)
KNOBS: dict[str, tuple] = {
    "steps": (10, 25, 50, 1000),
    "guidance_scale": (1.0, 3.0, 6.0),
    "temperature": (0.7, 1.0),
    "top_k": (0, 32),
    "truncation": (0.5, 0.7, 1.0),
}
SLOW_NFE = 400  # points that take more network evaluations per image than this are measured at the slow N
QUALITY = ("fid_sb", "kid", "precision", "recall", "density", "coverage", "attribute_accuracy",
           "judge_attribute_accuracy", "r_precision", "nearest_train_ratio")
DDPM_STEPS = 1000  # every released U-Net's schedule (diffusion.schedules.get_schedule's default T)
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


def network_evaluations(recipe, options) -> int:
    """Forward passes of the generator's network per image (a guided pass over a doubled batch counts two).

    Diffusion: one per sampler step (DDPM takes every step of the schedule), doubled by classifier-free guidance
    at scales other than 0 and 1. Token models: one per image token, doubled by guidance, times the reranking's
    draws. DDGAN: one per denoising step; the other GANs: one."""
    family = recipe.family
    if recipe.role == "judge":  # DDIM on the unconditional U-Net, plus the judge's gradient at every step
        return 2 * options.steps
    guided = getattr(options, "guidance_scale", 1.0) not in (0.0, 1.0)
    if family == "diffusion":
        steps = options.steps if options.sampler == "ddim" else DDPM_STEPS
        return steps * (2 if guided else 1)
    if family == "autoregressive":
        tokens = getattr(recipe.model_config, "image_tokens", 64)
        return tokens * (2 if guided else 1) * getattr(options, "rerank", 1)
    return getattr(recipe.model_config, "num_timesteps", 1)


def plan(models: list[str], n: int, sweep_n: int, slow_n: int, sweeps: bool = True) -> list[Point]:
    """The points of a run: each model's defaults at N, and each knob value at the sweep N (at the slow N where a
    setting costs more than SLOW_NFE network evaluations per image)."""
    from ..recipes import get_preset

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
        for field in dataclasses.fields(defaults):
            for value in KNOBS.get(field.name, ()):
                options = recipe.options({field.name: value})
                changed = tuple((f.name, getattr(options, f.name)) for f in dataclasses.fields(options)
                                if getattr(options, f.name) != getattr(defaults, f.name))
                if changed in seen:  # the default value of several knobs is one point
                    continue
                seen.add(changed)
                cost = network_evaluations(recipe, options)
                points.append(Point(name, changed, slow_n if cost > SLOW_NFE else sweep_n, "sweep"))
    return points


def cache_key(point: Point, sha256: str, seed: int, threads: int, device: str, judges: dict[str, str]) -> str:
    settings = {"model": point.model, "sha256": sha256, "options": [list(o) for o in point.options], "n": point.n,
                "seed": seed, "threads": threads, "device": device, "judges": judges, "batch": 100,
                "version": PROTOCOL_VERSION}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def judge_versions() -> dict[str, str]:
    """The sha256 of each judge the protocol uses: a retrained judge invalidates every cached point."""
    from ..metrics.protocol import judge_versions as versions

    return versions()


def released_generators(guided: bool = True) -> list[str]:
    """The released models that draw: the generators, then (with `guided`) the judges whose guidance turns the
    unconditional U-Net into a text-to-image sampler (classifier and CLIP guidance)."""
    from .. import zoo
    from ..recipes import PRESETS

    roles = ("generator", "judge") if guided else ("generator",)
    names = [name for name in zoo.available() if name in PRESETS and PRESETS[name].role in roles]
    return sorted(names, key=lambda name: roles.index(PRESETS[name].role))
