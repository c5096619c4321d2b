"""Guidance: the survey's two strategies for steering a diffusion model with text (chapter "Guiding diffusion with text").

1. External guidance of a model that never saw text. A differentiable score s(x_t, t) of how well the noisy
   image fits the prompt shifts the predicted noise along its gradient,
       eps_hat = eps_theta(x_t, t) - sqrt(1 - alpha_bar_t) * scale * grad_x s(x_t, t)
   (Dhariwal & Nichol, 2021, Sec. 4.2 and Algorithm 2). With s = log p(y | x_t) of a noise-aware classifier this is
   classifier guidance; with s = cosine(image_tower(x_t, t), text embedding) of a noise-aware CLIP it is semantic
   diffusion guidance (Liu et al., 2023).
2. The condition as model input, with classifier-free guidance (Ho & Salimans, 2021):
       out = out(uncond) + scale * (out(cond) - out(uncond)),
   written once in `classifier_free` for any function whose last argument is the condition: the noise
   prediction of a text-conditional U-Net, or the next-token logits of a GPT.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .process import ModelFn, extract
from .schedules import Schedule

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> (B,) score to increase


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
        out_cond, out_uncond = fn(*doubled, _concat(cond, null_cond)).chunk(2)
        return cfg_combine(out_uncond, out_cond, scale)

    return guided


def _concat(a: Any, b: Any) -> Any:
    """Concatenate two conditions along the batch: tensors, or tuples/NamedTuples of tensors."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, tuple):
        parts = [_concat(x, y) for x, y in zip(a, b)]
        return type(a)(*parts) if hasattr(a, "_fields") else tuple(parts)
    raise TypeError(f"cannot batch conditions of type {type(a).__name__}")


def gradient_guidance(model_fn: ModelFn, score_fn: ScoreFn, scale: float, schedule: Schedule) -> ModelFn:
    """eps_hat = eps - sqrt(1 - alpha_bar_t) * scale * grad_x score(x_t, t): classifier or CLIP guidance."""
    def guided(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        pred_noise = model_fn(x_t, t)
        if scale == 0:
            return pred_noise
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            grad = torch.autograd.grad(score_fn(x, t).sum(), x)[0]
        return pred_noise - (1 - extract(schedule.alphas_cumprod, t, x_t)).sqrt() * scale * grad

    return guided
