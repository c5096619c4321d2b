"""Multi-head attention and the pre-LayerNorm transformer block (Vaswani et al., 2017; pre-LN as in GPT-2,
Radford et al., 2019). Shared by the mini-CLIP text tower and the GPTs of the autoregressive chapters.

Causal self-attention keeps an optional `KVCache`: drawing token n + 1 then needs the keys and values of the n
earlier positions, which the cache holds, instead of recomputing the whole sequence (one query per step)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class KVCache:
    """The keys and values of the positions seen so far, one (B, heads, T, head_dim) pair per attention layer."""

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is not None:
            k, v = torch.cat([self.keys, k], dim=2), torch.cat([self.values, v], dim=2)
        self.keys, self.values = k, v
        return k, v

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]


class SelfAttention(nn.Module):
    """(B, T, C) -> (B, T, C); `pad_mask` (B, T) is True at padding positions, which no query attends to.

    With a `cache`, x holds only the new positions; their keys and values are appended to the cache and the
    queries attend to every cached position (causally), and `pad_mask` then covers all of them (B, T_cache + T)."""

    def __init__(self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.heads)
        if cache is not None:
            return self.out(rearrange(self._cached(q, k, v, pad_mask, cache), "b h t d -> b t (h d)"))
        mask = None
        if pad_mask is not None:
            mask = ~pad_mask[:, None, None, :]  # (B, 1, 1, T): True where attending is allowed
            if self.causal:
                t = x.shape[1]
                mask = mask & torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal and mask is None)
        return self.out(rearrange(y, "b h t d -> b t (h d)"))

    def _cached(self, q, k, v, pad_mask, cache: KVCache) -> torch.Tensor:
        k, v = cache.extend(k, v)
        t_new, t_all = q.shape[2], k.shape[2]
        mask = None
        if self.causal:  # query i (of the new ones) sits at position t_all - t_new + i
            mask = torch.ones(t_new, t_all, dtype=torch.bool, device=q.device).tril(t_all - t_new)
        if pad_mask is not None:
            keys = ~pad_mask[:, None, None, :]  # (B, 1, 1, T_all)
            mask = keys if mask is None else keys & mask
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                              dropout_p=self.dropout if self.training else 0.0)


class TransformerBlock(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x)): (B, T, C) -> (B, T, C)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads, causal, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), pad_mask, cache)
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
