"""Samplers: DDPM ancestral sampling and DDIM, as plain functions of a model function.

Chapter "Diffusion from noise to birds". `model_fn(x_t, t) -> pred_noise` may be a denoiser (`as_denoiser(unet)`),
a text-conditional one with its condition bound, or a guided model function (see `guidance.py`): the samplers do
not care, but they refuse a function that says it predicts something else than noise, and take the schedule of a
denoiser from the denoiser itself (`schedule` may then be left out).
- `ddpm_sample`: Algorithm 2 of Ho et al. (2020), T network calls;
- `ddim_sample`: Eq. 12 of Song et al. (2021) on an evenly spaced subsequence of S <= T steps; eta = 0 is
  deterministic, eta = 1 has the variance of DDPM's posterior. Started from a noised image at an intermediate
  `t_start` instead of pure noise at T-1, it is SDEdit (Meng et al., 2022): the image keeps the layout that
  survives the noise, and the model redraws the rest.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .denoiser import model_schedule
from .process import ModelFn, predict_x0, q_posterior
from .schedules import Schedule

Callback = Callable[[int, torch.Tensor, torch.Tensor], None]  # (t, x_t, predicted x_0)


def _noise(shape, generator, device, dtype):
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


@torch.no_grad()
def ddpm_sample(model_fn: ModelFn, shape: tuple[int, ...], schedule: Schedule | None = None, generator: torch.Generator | None = None,
                device: str | torch.device = "cpu", clip_x0: bool = True, callback: Callback | None = None,
                progress: bool = False) -> torch.Tensor:
    """Ancestral sampling from x_T ~ N(0, I) down to x_0: (B, C, H, W) in [-1, 1] when `clip_x0`."""
    schedule = model_schedule(model_fn, schedule)
    x = _noise(shape, generator, device, torch.float32)
    for i in tqdm(range(schedule.num_steps - 1, -1, -1), desc="DDPM", disable=not progress):
        t = torch.full((shape[0],), i, device=device, dtype=torch.long)
        # 1. predict the noise, and from it x_0 (clipped to the data range)
        x0 = predict_x0(x, t, model_fn(x, t), schedule)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        # 2. x_{t-1} ~ q(x_{t-1} | x_t, x_0 = prediction): mean and beta_tilde variance (Eqs. 6-7); no noise at t=0
        posterior = q_posterior(x0, x, t, schedule)
        if callback is not None:
            callback(i, x, x0)
        x = posterior.mean + (i > 0) * (0.5 * posterior.log_variance).exp() * _noise(shape, generator, device, x.dtype)
    return x


def ddim_timesteps(num_train_steps: int, num_steps: int, t_start: int | None = None) -> list[int]:
    """An evenly spaced, increasing subsequence of {0..t_start} of length S ending at t_start (default T-1)."""
    last = num_train_steps - 1 if t_start is None else t_start
    if not 0 <= last < num_train_steps:
        raise ValueError(f"t_start must be in 0..{num_train_steps - 1}, got {t_start}")
    if not 1 <= num_steps <= last + 1:
        raise ValueError(f"num_steps must be in 1..{last + 1}, got {num_steps}")
    steps = torch.linspace(0, last, num_steps).round().long().tolist()
    return sorted(set(steps))


@torch.no_grad()
def ddim_sample(model_fn: ModelFn, shape: tuple[int, ...], schedule: Schedule | None = None, num_steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, device: str | torch.device = "cpu", clip_x0: bool = True,
                callback: Callback | None = None, progress: bool = False, x_T: torch.Tensor | None = None,
                t_start: int | None = None) -> torch.Tensor:
    """DDIM from x_T (drawn, or given as `x_T`) in `num_steps` network calls: (B, C, H, W).

    With `t_start`, `x_T` is taken to be x at that step (e.g. `q_sample(image, t_start, noise)`) and the chain
    runs from there down to 0 (SDEdit)."""
    if t_start is not None and x_T is None:
        raise ValueError("t_start needs x_T: the noised image to start from")
    schedule = model_schedule(model_fn, schedule)
    ab_all = schedule.alphas_cumprod
    timesteps = ddim_timesteps(schedule.num_steps, num_steps, t_start)
    x = x_T.to(device).float() if x_T is not None else _noise(shape, generator, device, torch.float32)
    for k in tqdm(range(len(timesteps) - 1, -1, -1), desc="DDIM", disable=not progress):
        i, prev = timesteps[k], timesteps[k - 1] if k > 0 else -1
        t = torch.full((x.shape[0],), i, device=device, dtype=torch.long)
        ab_t = float(ab_all[i])
        ab_prev = float(ab_all[prev]) if prev >= 0 else 1.0
        # 1. predict eps and x_0 (Song et al. Eq. 9)
        pred_noise = model_fn(x, t)
        x0 = predict_x0(x, t, pred_noise, schedule)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            pred_noise = (x - ab_t ** 0.5 * x0) / (1 - ab_t) ** 0.5  # keep eps consistent with the clipped x_0
        if callback is not None:
            callback(i, x, x0)
        # 2. sigma_t(eta) (Eq. 16), then x_prev = sqrt(ab_prev) x_0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z (Eq. 12)
        sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
        x = ab_prev ** 0.5 * x0 + max(0.0, 1 - ab_prev - sigma ** 2) ** 0.5 * pred_noise
        if sigma > 0:
            x = x + sigma * _noise(x.shape, generator, device, x.dtype)
    return x
