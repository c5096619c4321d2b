"""A network that knows what it predicts (chapter "Diffusion from noise to birds").

A U-Net may be trained to output the noise eps or the velocity v (`UNetConfig.prediction`), under a linear or a
cosine schedule (`UNetConfig.schedule`); the samplers and external guidance take noise predictions on one schedule.
`as_denoiser(unet)` wraps a network once into that form, on the schedule it was trained with:

    eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t                     (Salimans & Ho, 2022, Appendix D)

The wrapper carries `prediction = "eps"` and its `schedule`; a bare v-network carries `prediction = "v"`. The
samplers read both: a network that does not output noise is refused with a message instead of silently sampling
garbage, and a model function sampled on another schedule than its own is refused too.
"""
from __future__ import annotations

import torch
from torch import nn

from .process import noise_from_v
from .schedules import Schedule, get_schedule


class Denoiser:
    """(x_t, t[, condition]) -> predicted noise of `net`, whatever it outputs, on the schedule it was trained with."""

    prediction = "eps"

    def __init__(self, net: nn.Module, schedule: Schedule | None = None):
        cfg = net.cfg
        if cfg.prediction not in ("eps", "v"):
            raise ValueError(f"unknown prediction {cfg.prediction!r} in the network's config; expected 'eps' or 'v'")
        self.net, self.net_prediction = net, cfg.prediction
        self.schedule = schedule if schedule is not None else get_schedule(cfg.schedule)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, *condition) -> torch.Tensor:
        out = self.net(x_t, t, *condition)
        return noise_from_v(x_t, t, out, self.schedule) if self.net_prediction == "v" else out

    def __repr__(self) -> str:
        return f"Denoiser({type(self.net).__name__}, predicts {self.net_prediction}, {len(self.schedule.betas)} steps)"


def as_denoiser(net: "nn.Module | Denoiser") -> Denoiser:
    """Wrap a U-Net (eps- or v-predicting) into a noise predictor on its own schedule; a Denoiser is returned as is."""
    return net if isinstance(net, Denoiser) else Denoiser(net)


def same_schedule(a: Schedule, b: Schedule) -> bool:
    return a is b or (a.alphas_cumprod.shape == b.alphas_cumprod.shape
                      and torch.allclose(a.alphas_cumprod, b.alphas_cumprod, rtol=0, atol=1e-12))


def model_schedule(model_fn, schedule: Schedule | None = None) -> Schedule:
    """The schedule to run `model_fn` on: its own (a Denoiser's) or the one given; refused when they differ."""
    check_predicts_noise(model_fn)
    own = getattr(model_fn, "schedule", None)
    if own is not None and schedule is not None and not same_schedule(own, schedule):
        raise ValueError("the model function was trained on another noise schedule than the one passed; "
                         "leave schedule= out to use its own")
    if own is None and schedule is None:
        raise ValueError("no noise schedule: pass schedule=, or wrap the network with as_denoiser(net)")
    return own if own is not None else schedule


def check_predicts_noise(model_fn) -> None:
    """Refuse a model function that outputs anything but the noise (e.g. a bare v-predicting U-Net)."""
    prediction = getattr(model_fn, "prediction", "eps")
    if prediction != "eps":
        raise ValueError(f"this model function outputs {prediction!r}, but samplers and guidance take predicted "
                         f"noise: wrap the network with t2ilab.diffusion.as_denoiser(net) first")
