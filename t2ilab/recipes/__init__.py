"""The preset registry: one module per family, each listing its preset rows (see `base.Recipe`).

`t2ilab train/evaluate/sample/compare`, the benchmarks and the zoo's class check loop over `PRESETS` and call the
recipe interface only. A new family adds a module here and its rows below; nothing else changes.

    clip.py        mini-CLIP, the shared text encoder                     (role: text encoder)
    evaluator.py   the bird evaluator of the protocol                      (role: evaluator)
    diffusion.py   unconditional and text-conditional U-Nets               (role: generator)
    judges.py      noise-aware classifier and CLIP for external guidance   (role: judge)
    autoregressive.py  the VQ-VAE image tokenizer (role: tokenizer); the DALL-E-style and CLIP-GEN-style GPTs
    gan.py         the single-stage generator with deep fusion (DF-GAN), the StackGAN++ tree, the denoising
                   diffusion GAN (role: generator)
"""
from __future__ import annotations

from torch import nn

from . import autoregressive, clip, diffusion, evaluator, gan, judges
from .base import (Job, Recipe, Role, TextToImage, describe_options, knob, option_fields, parse_options,
                   sweep_values)

PRESETS: dict[str, Recipe] = {r.name: r for module in (clip, evaluator, diffusion, judges, autoregressive, gan) for r in module.PRESETS}


def get_preset(name: str) -> Recipe:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def generators() -> list[str]:
    """Presets that draw images from captions: generators, and judges (which draw with the model they guide)."""
    return [name for name, r in PRESETS.items() if r.role in ("generator", "judge")]


def family_colours() -> dict[str, str]:
    """The colour of each family that draws, in the registry's order: what the chapters' plots use, so that a new
    family is drawn without editing them."""
    return {r.family: r.colour for r in PRESETS.values() if r.role in ("generator", "judge")}


def sampling_option_names() -> dict[str, list[str]]:
    """Every sampling option a preset declares, with the families whose models take it (the CLI's shorthands)."""
    names: dict[str, set[str]] = {}
    for recipe in PRESETS.values():
        for name in option_fields(recipe.sampling):
            names.setdefault(name, set()).add(recipe.family)
    return {name: sorted(families) for name, families in sorted(names.items())}


def option_limits() -> dict[str, list[str]]:
    """The valid range of each sampling option that has one, in words (`LIMITS` of the options classes, which their
    `check` enforces), for the CLI's help."""
    limits: dict[str, set[str]] = {}
    for recipe in PRESETS.values():
        for name, text in getattr(type(recipe.sampling), "LIMITS", {}).items():
            limits.setdefault(name, set()).add(text)
    return {name: sorted(texts) for name, texts in sorted(limits.items())}


def model_classes() -> dict[str, type[nn.Module]]:
    """The presets' model classes by dotted path (each registers itself for the zoo where it is defined)."""
    classes = {r.model_class for r in PRESETS.values()}
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


__all__ = ["Job", "PRESETS", "Recipe", "Role", "TextToImage", "describe_options", "generators", "get_preset",
           "family_colours", "knob", "model_classes", "option_fields", "option_limits", "parse_options", "sampling_option_names",
           "sweep_values"]
