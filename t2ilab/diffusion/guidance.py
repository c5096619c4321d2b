"""Guidance: the survey's two strategies for steering a diffusion model with text (chapter "Guiding diffusion with text").

1. External guidance of a model that never saw text. A differentiable score s(x_t, t) of how well the noisy
   image fits the prompt shifts the predicted noise along its gradient,
       eps_hat = eps_theta(x_t, t) - sqrt(1 - alpha_bar_t) * scale * grad_x s(x_t, t)
   (Dhariwal & Nichol, 2021, Sec. 4.2 and Algorithm 2). With s = log p(y | x_t) of a noise-aware classifier this is
   classifier guidance; with s = cosine(image_tower(x_t, t), text embedding) of a noise-aware CLIP it is semantic
   diffusion guidance (Liu et al., 2023).
2. The condition as model input, with classifier-free guidance (Ho & Salimans, 2021): `t2ilab.guidance`, shared
   with the autoregressive family, re-exported here.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..guidance import cfg_combine, classifier_free, inherit_attributes
from .denoiser import model_schedule
from .process import ModelFn, extract
from .schedules import Schedule

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> (B,) score to increase

__all__ = ["ScoreFn", "cfg_combine", "classifier_free", "gradient_guidance"]


def gradient_guidance(model_fn: ModelFn, score_fn: ScoreFn, scale: float, schedule: Schedule | None = None) -> ModelFn:
    """eps_hat = eps - sqrt(1 - alpha_bar_t) * scale * grad_x score(x_t, t): classifier or CLIP guidance.

    `schedule` defaults to the model function's own (a denoiser from `as_denoiser` carries it)."""
    schedule = model_schedule(model_fn, schedule)

    def guided(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        pred_noise = model_fn(x_t, t)
        if scale == 0:
            return pred_noise
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            grad = torch.autograd.grad(score_fn(x, t).sum(), x)[0]
        return pred_noise - (1 - extract(schedule.alphas_cumprod, t, x_t)).sqrt() * scale * grad

    return inherit_attributes(guided, model_fn)
