"""Multi-head attention and the pre-LayerNorm transformer block (Vaswani et al., 2017; pre-LN as in GPT-2,
Radford et al., 2019). Shared by the mini-CLIP text tower and, later, the GPT of the autoregressive chapter."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class SelfAttention(nn.Module):
    """(B, T, C) -> (B, T, C); `pad_mask` (B, T) is True at padding positions, which no query attends to."""

    def __init__(self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.heads)
        mask = None
        if pad_mask is not None:
            mask = ~pad_mask[:, None, None, :]  # (B, 1, 1, T): True where attending is allowed
            if self.causal:
                t = x.shape[1]
                mask = mask & torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal and mask is None)
        return self.out(rearrange(y, "b h t d -> b t (h d)"))


class TransformerBlock(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x)): (B, T, C) -> (B, T, C)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads, causal, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), pad_mask)
        return x + self.mlp(self.ln2(x))


class CrossAttention(nn.Module):
    """Queries from x (B, N, C) attend to a context (B, T, D), e.g. the words of a caption; padding is masked."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        q = rearrange(self.q(self.norm(x)), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(context), "b t (two h d) -> two b h t d", two=2, h=self.heads)
        mask = None if pad_mask is None else ~pad_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return x + self.out(rearrange(y, "b h n d -> b n (h d)"))
