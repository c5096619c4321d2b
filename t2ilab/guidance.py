"""Classifier-free guidance, written once for every family (chapters "Guiding diffusion with text" and
"Birds token by token").

    out = out(uncond) + scale * (out(cond) - out(uncond))                      (Ho & Salimans, 2021, Eq. 6)

`classifier_free` wraps any function whose last argument is the condition: the noise prediction of a
text-conditional U-Net, or the next-token logits of a GPT. Both conditions run in one batch of twice the size.

A model function may carry what a sampler must know about it as attributes (`prediction`, `schedule`: see
`t2ilab.diffusion.denoiser`); the wrapper keeps them, so that guidance can never hide what a network outputs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

MODEL_FN_ATTRIBUTES = ("prediction", "schedule")  # what wrappers of a model function pass on


def cfg_combine(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale * (cond - uncond): scale 0 is unconditional, 1 conditional, > 1 guided."""
    return uncond + scale * (cond - uncond)


def classifier_free(fn: Callable[..., torch.Tensor], cond: Any, null_cond: Any, scale: float) -> Callable[..., torch.Tensor]:
    """Wrap `fn(*inputs, condition)` into `guided(*inputs)`; both conditions run in one batch of size 2B."""
    def guided(*inputs: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return fn(*inputs, cond)
        if scale == 0.0:
            return fn(*inputs, null_cond)
        doubled = [torch.cat([x, x]) for x in inputs]
        out_cond, out_uncond = fn(*doubled, concat_conditions(cond, null_cond)).chunk(2)
        return cfg_combine(out_uncond, out_cond, scale)

    return inherit_attributes(guided, fn)


def inherit_attributes(wrapper: Callable, fn: Callable) -> Callable:
    """Copy the model-function attributes of `fn` (what it predicts, its schedule) onto `wrapper`."""
    for name in MODEL_FN_ATTRIBUTES:
        if hasattr(fn, name):
            setattr(wrapper, name, getattr(fn, name))
    return wrapper


def concat_conditions(a: Any, b: Any) -> Any:
    """Concatenate two conditions along the batch: tensors, or tuples/NamedTuples of tensors."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, tuple):
        parts = [concat_conditions(x, y) for x, y in zip(a, b)]
        return type(a)(*parts) if hasattr(a, "_fields") else tuple(parts)
    raise TypeError(f"cannot batch conditions of type {type(a).__name__}")
