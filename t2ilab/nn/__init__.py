"""Shared building blocks, written once and used by every family (residual conv blocks, attention, transformers)."""
from .attention import SelfAttention, TransformerBlock
from .blocks import Downsample, ResBlock, Upsample, count_parameters

__all__ = ["Downsample", "ResBlock", "SelfAttention", "TransformerBlock", "Upsample", "count_parameters"]
