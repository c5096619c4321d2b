"""Diffusion (chapters "Diffusion from noise to birds" and "Guiding diffusion with text").

Network (`unet.py`), schedules (`schedules.py`, pure functions), process (`process.py`, no parameters), samplers
(`samplers.py`, functions of a model function) and guidance (`guidance.py`, wrappers of model functions) stay apart;
`as_denoiser` (`denoiser.py`) turns a network into the noise predictor they all take, on its own schedule.
"""
from .denoiser import Denoiser, as_denoiser
from .guidance import cfg_combine, classifier_free, gradient_guidance
from .process import (diffusion_loss, noise_from_v, noise_prediction_loss, predict_x0, q_posterior, q_sample,
                      v_target)
from .samplers import ddim_sample, ddim_timesteps, ddpm_sample
from .schedules import Schedule, cosine_betas, get_schedule, linear_betas, make_schedule
from .unet import TextCondition, UNet, UNetConfig

__all__ = ["Denoiser", "Schedule", "as_denoiser", "TextCondition", "UNet", "UNetConfig", "cfg_combine", "classifier_free", "cosine_betas",
           "ddim_sample", "ddim_timesteps", "ddpm_sample", "get_schedule", "gradient_guidance", "linear_betas",
           "make_schedule", "noise_prediction_loss", "predict_x0", "q_posterior", "q_sample", "diffusion_loss",
           "noise_from_v", "v_target"]
