"""Shared building blocks, written once and used by every family (residual conv blocks, the image encoder,
attention, transformers, timestep embeddings)."""
from .attention import CrossAttention, KVCache, SelfAttention, TransformerBlock
from .blocks import ConvEncoder, Downsample, ResBlock, Upsample, count_parameters, group_norm
from .embeddings import timestep_embedding

__all__ = ["ConvEncoder", "CrossAttention", "KVCache", "Downsample", "ResBlock", "SelfAttention", "TransformerBlock",
           "Upsample", "count_parameters", "group_norm", "timestep_embedding"]
