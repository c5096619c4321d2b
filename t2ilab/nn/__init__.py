"""Shared building blocks, written once and used by every family (residual conv blocks, attention, transformers)."""
from .attention import CrossAttention, SelfAttention, TransformerBlock
from .blocks import Downsample, ResBlock, Upsample, count_parameters

__all__ = ["CrossAttention", "Downsample", "ResBlock", "SelfAttention", "TransformerBlock", "Upsample", "count_parameters"]
