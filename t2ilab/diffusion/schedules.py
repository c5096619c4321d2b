"""Noise schedules as pure functions returning float64 tensors (chapter "Diffusion from noise to birds").

- `linear_betas`: beta_t rising linearly from 1e-4 to 0.02 over T = 1000 steps (Ho et al., 2020, Sec. 4).
- `cosine_betas`: alpha_bar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) * pi/2), s = 0.008, betas clipped at
  0.999 (Nichol & Dhariwal, 2021, Eq. 17).
- `make_schedule`: every derived quantity the process and the samplers need, computed once.
"""
from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

ScheduleName = Literal["linear", "cosine"]


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) betas, linear in t; the start and end are given for T = 1000 and rescaled for other T."""
    scale = 1000 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64)


def cosine_betas(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """(T,) betas from the squared-cosine alpha_bar of Nichol & Dhariwal (2021), Eq. 17."""
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


class Schedule(NamedTuple):
    """Per-step constants, each (T,) float64; index t = 0 is the first noising step."""

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor  # alpha_bar_t = prod_{s<=t} (1 - beta_s)
    alphas_cumprod_prev: torch.Tensor  # alpha_bar_{t-1}, with alpha_bar_{-1} = 1
    posterior_variance: torch.Tensor  # beta_tilde_t, Ho et al. Eq. 7
    posterior_log_variance_clipped: torch.Tensor  # log beta_tilde_t with t = 0 replaced by t = 1 (it is 0)
    posterior_mean_coef1: torch.Tensor  # coefficient of x_0 in mu_tilde_t, Eq. 7
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t in mu_tilde_t, Eq. 7

    @property
    def num_steps(self) -> int:
        return len(self.betas)


def make_schedule(betas: torch.Tensor) -> Schedule:
    """All constants of the forward process and its posterior q(x_{t-1} | x_t, x_0) from the betas."""
    betas = betas.to(torch.float64)
    if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, 0)
    alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    # beta_tilde_0 = 0: its log is replaced by step 1's (by 1e-20's for a one-step process, which never adds noise)
    first = posterior_variance[1:2] if len(betas) > 1 else torch.full((1,), 1e-20, dtype=torch.float64)
    log_var = torch.log(torch.cat([first, posterior_variance[1:]]))
    return Schedule(
        betas=betas, alphas_cumprod=alphas_cumprod, alphas_cumprod_prev=alphas_cumprod_prev,
        posterior_variance=posterior_variance, posterior_log_variance_clipped=log_var,
        posterior_mean_coef1=betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
        posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
    )


def get_schedule(name: ScheduleName = "linear", num_steps: int = 1000) -> Schedule:
    """`make_schedule` of the named betas."""
    if name == "linear":
        return make_schedule(linear_betas(num_steps))
    if name == "cosine":
        return make_schedule(cosine_betas(num_steps))
    raise ValueError(f"schedule must be 'linear' or 'cosine', got {name!r}")
