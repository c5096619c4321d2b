"""The diffusion process: forward noising, the training loss and the posterior (chapter "Diffusion from noise to birds").

No parameters live here: the network is passed in as a function `pred_noise = model_fn(x_t, t)`. Equation numbers
are those of Ho et al. (2020), "Denoising Diffusion Probabilistic Models".

A network may also be trained to output v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0 instead of eps
(Salimans & Ho, 2022, Sec. 4 and Appendix D). The eps loss is the x_0 error weighted by the signal-to-noise ratio,
which is almost zero at large t, where the layout and colours of the image are decided; the v loss weights it by
SNR + 1 and so keeps a signal there. `noise_from_v` turns a v network back into the eps model function every sampler
and guidance method here takes (`denoiser.as_denoiser` applies it once, on the network's own schedule).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from .schedules import Schedule

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B,C,H,W), t (B,)) -> pred_noise
Prediction = Literal["eps", "v"]  # what a network outputs


def extract(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as (B, 1, 1, 1) in the dtype and device of `like`."""
    return values.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def q_sample(x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Eq. 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a sample of q(x_t | x_0)."""
    ab = extract(schedule.alphas_cumprod, t, x_start)
    return ab.sqrt() * x_start + (1 - ab).sqrt() * noise


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, pred_noise: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Eq. 4 solved for x_0: x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
    ab = extract(schedule.alphas_cumprod, t, x_t)
    return (x_t - (1 - ab).sqrt() * pred_noise) / ab.sqrt()


class Posterior(NamedTuple):
    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor


def q_posterior(x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> Posterior:
    """Eqs. 6-7: q(x_{t-1} | x_t, x_0) = N(mu_tilde_t, beta_tilde_t I)."""
    mean = (extract(schedule.posterior_mean_coef1, t, x_t) * x_start
            + extract(schedule.posterior_mean_coef2, t, x_t) * x_t)
    return Posterior(mean, extract(schedule.posterior_variance, t, x_t),
                     extract(schedule.posterior_log_variance_clipped, t, x_t))


def noise_prediction_loss(model_fn: ModelFn, x_start: torch.Tensor, schedule: Schedule,
                          t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 14, L_simple: E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||^2 (mean over pixels and batch)."""
    if t is None:
        t = torch.randint(schedule.num_steps, (len(x_start),), device=x_start.device)
    if noise is None:
        noise = torch.randn_like(x_start)
    x_t = q_sample(x_start, t, noise, schedule)
    return F.mse_loss(model_fn(x_t, t), noise)


def v_target(x_start: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho, 2022)."""
    ab = extract(schedule.alphas_cumprod, t, x_start)
    return ab.sqrt() * noise - (1 - ab).sqrt() * x_start


def noise_from_v(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t, which follows from x_t = sqrt(ab) x_0 + sqrt(1-ab) eps."""
    ab = extract(schedule.alphas_cumprod, t, x_t)
    return ab.sqrt() * v + (1 - ab).sqrt() * x_t


def snr(schedule: Schedule, t: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio of step t: alpha_bar_t / (1 - alpha_bar_t) (float64, on t's device)."""
    ab = schedule.alphas_cumprod.to(t.device)[t]
    return ab / (1 - ab)


def min_snr_weights(schedule: Schedule, t: torch.Tensor, gamma: float, prediction: Prediction) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al., 2023, "Efficient Diffusion Training via Min-SNR Weighting").

    Their rule weights the x_0 error by min(SNR_t, gamma), so that the easy low-noise steps no longer dominate
    the gradient. Expressed for the target the network regresses (the x_0 error is the eps error times SNR, and
    the v error times SNR + 1): w_t = min(SNR_t, gamma) / SNR_t for eps, min(SNR_t, gamma) / (SNR_t + 1) for v.
    """
    ratio = snr(schedule, t)
    clipped = ratio.clamp(max=gamma)
    if prediction == "eps":
        return (clipped / ratio).float()
    if prediction == "v":
        return (clipped / (ratio + 1)).float()
    raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")


def diffusion_loss(model_fn: ModelFn, x_start: torch.Tensor, schedule: Schedule, prediction: Prediction = "eps",
                   t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                   min_snr_gamma: float | None = None) -> torch.Tensor:
    """L_simple for a network that outputs eps (Eq. 14) or v: the mean squared error against that target; with
    `min_snr_gamma`, each example's error weighted by `min_snr_weights`."""
    if prediction not in ("eps", "v"):
        raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
    if prediction == "eps" and min_snr_gamma is None:
        return noise_prediction_loss(model_fn, x_start, schedule, t, noise)
    if t is None:
        t = torch.randint(schedule.num_steps, (len(x_start),), device=x_start.device)
    if noise is None:
        noise = torch.randn_like(x_start)
    target = noise if prediction == "eps" else v_target(x_start, noise, t, schedule)
    error = (model_fn(q_sample(x_start, t, noise, schedule), t) - target).pow(2).flatten(1).mean(1)  # (B,)
    if min_snr_gamma is None:
        return error.mean()
    return (min_snr_weights(schedule, t, min_snr_gamma, prediction).to(error.dtype) * error).mean()
