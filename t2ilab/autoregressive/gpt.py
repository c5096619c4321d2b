"""A decoder-only transformer with a KV cache, and how to choose the next token (chapter "Birds token by token").

After GPT-2 (Radford et al., 2019) as minGPT writes it: pre-LayerNorm blocks of causal self-attention and an MLP
(`t2ilab.nn.TransformerBlock`), a final LayerNorm. The core takes already embedded sequences, so one
implementation serves both strategies of the chapter: the DALL-E-style model puts caption tokens and image tokens
in one sequence with their own embeddings (`dalle.py`); the CLIP-conditioned model puts a CLIP embedding in front
of the image tokens (`clipgen.py`).

Drawing a token: logits / temperature, then keep the top k (Fan et al., 2018) or the smallest set whose
probability reaches p (nucleus sampling, Holtzman et al., 2020), renormalise, draw; temperature 0 is greedy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..guidance import cfg_combine, classifier_free
from ..nn import KVCache, TransformerBlock


@dataclass
class GPTConfig:
    dim: int = 256
    layers: int = 6
    heads: int = 8
    mlp_ratio: int = 4
    dropout: float = 0.0  # minGPT's image example trains a model of this size without dropout


class GPT(nn.Module):
    """Embedded sequence (B, T, dim) -> hidden states (B, T, dim), causally; `caches` (one per layer) for
    incremental decoding, in which case x holds only the new positions."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, causal=True,
                                                     dropout=cfg.dropout) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.dim)
        self.apply(_init_weights)

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in self.blocks]

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None,
                caches: list[KVCache] | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, pad_mask, caches[i] if caches is not None else None)
        return self.ln(x)


def _init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set every logit outside the top k (0: all) and outside the nucleus of mass p (1: all) to -inf: (B, V)."""
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already reach p (the top token always stays)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose_tokens(logits: torch.Tensor, generator: torch.Generator | None = None, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Next token ids (B,) from logits (B, V): greedy at temperature 0, else a draw from the filtered softmax."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.no_grad()
def sample_with_cache(gpt: GPT, prefix: torch.Tensor, prefix_pad: torch.Tensor | None,
                      embed_token: Callable[[torch.Tensor, int], torch.Tensor], head: Callable[[torch.Tensor], torch.Tensor],
                      num_tokens: int, generator: torch.Generator | None = None, guidance_scale: float = 1.0,
                      temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Draw `num_tokens` tokens after an embedded prefix (B', P, dim), one network pass per token with a KV cache.

    With guidance (scale != 1) the prefix holds the conditioned rows then the unconditioned ones (B' = 2B); both
    halves share the cache and their logits are combined by classifier-free guidance before each draw.
    `embed_token(ids (B',), j)` embeds the token drawn at step j as the input of the next position. -> (B, n)."""
    guided = guidance_scale != 1.0
    caches = gpt.new_caches()
    h = gpt(prefix, prefix_pad, caches)
    pad = prefix_pad
    tokens = []
    for j in range(num_tokens):
        logits = head(h[:, -1])
        if guided:
            cond, uncond = logits.chunk(2)
            logits = cfg_combine(uncond, cond, guidance_scale)
        next_ids = choose_tokens(logits, generator, temperature, top_k, top_p)
        tokens.append(next_ids)
        if j + 1 < num_tokens:
            step_ids = torch.cat([next_ids, next_ids]) if guided else next_ids
            if pad is not None:
                pad = torch.cat([pad, torch.zeros_like(pad[:, :1])], 1)
            h = gpt(embed_token(step_ids, j + 1), pad, caches)
    return torch.stack(tokens, 1)


@torch.no_grad()
def sample_without_cache(next_logits: Callable[[torch.Tensor, object], torch.Tensor], condition, null_condition,
                         batch: int, num_tokens: int, generator: torch.Generator | None = None,
                         guidance_scale: float = 1.0, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                         device=None) -> torch.Tensor:
    """The reference for `sample_with_cache`: `next_logits(prefix (B, n), condition) -> (B, V)` recomputes the
    whole sequence for every token; guidance through `classifier_free`. -> (B, num_tokens)."""
    step = classifier_free(next_logits, condition, null_condition, guidance_scale)
    tokens = torch.zeros(batch, 0, dtype=torch.long, device=device)
    for _ in range(num_tokens):
        next_ids = choose_tokens(step(tokens), generator, temperature, top_k, top_p)
        tokens = torch.cat([tokens, next_ids[:, None]], 1)
    return tokens
