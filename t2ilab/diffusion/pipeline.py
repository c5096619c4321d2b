"""Glue between the frozen mini-CLIP text tower and the U-Net: captions in, model functions out.

Chapters "Diffusion from noise to birds" and "Guiding diffusion with text". The samplers take `model_fn(x_t, t)`;
these helpers bind captions (and guidance) into such a function, so that every sampler works with every model.
"""
from __future__ import annotations

import torch

from ..guidance import classifier_free
from .denoiser import as_denoiser
from .process import ModelFn
from .unet import TextCondition, UNet


@torch.no_grad()
def caption_condition(clip, captions: list[str], device: str | torch.device = "cpu") -> TextCondition:
    """Captions -> the U-Net's TextCondition through mini-CLIP's tokenizer and frozen text tower."""
    ids = clip.tokenizer.encode_batch(captions).to(device)
    return condition_from_ids(clip, ids)


@torch.no_grad()
def condition_from_ids(clip, ids: torch.Tensor, dropped: torch.Tensor | None = None) -> TextCondition:
    """Token ids (B, T) -> TextCondition; `dropped` (B,) bool marks rows replaced by the null condition."""
    features = clip.encode_text(ids)
    if dropped is None:
        dropped = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
    return TextCondition(features.words.float(), features.sentence.float(), features.pad_mask, dropped)


def text_model_fn(unet: UNet, condition: TextCondition, guidance_scale: float = 1.0) -> ModelFn:
    """model_fn(x_t, t) -> noise of a text-conditional U-Net, with classifier-free guidance when scale != 1."""
    return classifier_free(as_denoiser(unet), condition, condition.as_null(), guidance_scale)


def unconditional_model_fn(unet: UNet) -> ModelFn:
    """model_fn(x_t, t) -> noise of an unconditional U-Net, on its own schedule."""
    return as_denoiser(unet)
