"""Strategy 2 of the autoregressive family: image tokens from a CLIP embedding, trained without captions
(chapter "Birds token by token"; survey Sec. 1.2).

After CLIP-GEN (Wang et al., 2022): a transformer learns p(image tokens | CLIP image embedding of that image)
from images alone. CLIP puts images and their captions close together in one space, so at sampling time the CLIP
*text* embedding of a prompt takes the image embedding's place. Two things stand between the two:

- the *modality gap*: image and text embeddings of a contrastive model sit in two separate regions of the sphere
  (Liang et al., 2022), so a text embedding is not where the model saw image embeddings. `bridge` moves it by the
  difference of the two means (centring), then renormalises;
- exactness: an image embedding describes one image completely, a caption only part of it. Training on image
  embeddings with Gaussian noise added (then renormalised) teaches the model to draw from a blurred condition,
  which is what a caption's embedding is.

The condition enters as `prefix_tokens` learnt projections in front of the image tokens; it is replaced by a
learnt null prefix for a share of training images, so that classifier-free guidance works as for the DALL-E
model. The decoding functions are the GPT's (`gpt.sample_with_cache`, `gpt.sample_without_cache`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..registry import register_model
from .gpt import GPT, GPTConfig, sample_with_cache, sample_without_cache


@dataclass
class ClipGenConfig:
    embed_dim: int = 256  # mini-CLIP's embedding
    prefix_tokens: int = 4
    image_vocab: int = 512
    image_tokens: int = 64
    dim: int = 192
    layers: int = 4
    heads: int = 6
    dropout: float = 0.0
    condition_noise: float = 0.3  # std of the noise added to the unit image embedding in training (0: none)


@register_model
class ClipGenGPT(nn.Module):
    """(unit CLIP embedding (B, E), image codes (B, N)) -> next-image-token logits (B, N, V)."""

    config_class = ClipGenConfig

    def restore_card_data(self, card: dict) -> None:
        """What its card stores beside the weights (called by `zoo.load`): the image tokenizer it was trained on,
        name and sha256, checked when it is used."""
        if "vqvae" in card:
            self.vqvae_record = card["vqvae"]

    def __init__(self, cfg: ClipGenConfig):
        super().__init__()
        self.cfg = cfg
        self.condition = nn.Linear(cfg.embed_dim, cfg.prefix_tokens * cfg.dim)
        self.null_prefix = nn.Parameter(torch.randn(cfg.prefix_tokens, cfg.dim) * 0.02)
        self.prefix_position = nn.Parameter(torch.randn(cfg.prefix_tokens, cfg.dim) * 0.02)
        self.image_embedding = nn.Embedding(cfg.image_vocab + 1, cfg.dim)  # + the <image> start token
        self.image_position = nn.Parameter(torch.randn(cfg.image_tokens, cfg.dim) * 0.02)
        self.gpt = GPT(GPTConfig(cfg.dim, cfg.layers, cfg.heads, dropout=cfg.dropout))
        self.image_head = nn.Linear(cfg.dim, cfg.image_vocab, bias=False)
        # the means of training image embeddings and caption embeddings, for `bridge` (set by the recipe)
        self.register_buffer("image_mean", torch.zeros(cfg.embed_dim))
        self.register_buffer("text_mean", torch.zeros(cfg.embed_dim))

    @property
    def image_start(self) -> int:
        return self.cfg.image_vocab

    def prefix(self, embedding: torch.Tensor | None, batch: int | None = None) -> torch.Tensor:
        """The condition as `prefix_tokens` embedded positions (B, P, dim); None gives the null prefix."""
        if embedding is None:
            return (self.null_prefix + self.prefix_position).expand(batch, -1, -1)
        tokens = rearrange(self.condition(embedding), "b (p d) -> b p d", p=self.cfg.prefix_tokens)
        return tokens + self.prefix_position

    def bridge(self, text_embedding: torch.Tensor) -> torch.Tensor:
        """Move a unit text embedding across the modality gap: minus the text mean, plus the image mean, unit."""
        return F.normalize(text_embedding - self.text_mean + self.image_mean, dim=-1)

    def embed_images(self, inputs: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.image_embedding(inputs) + self.image_position[offset: offset + inputs.shape[1]]

    def forward(self, embedding: torch.Tensor | None, image_ids: torch.Tensor,
                dropped: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing; rows where `dropped` (B,) is True read the null prefix instead of the embedding."""
        prefix = self.prefix(embedding, len(image_ids))
        if dropped is not None:
            prefix = torch.where(dropped[:, None, None], self.prefix(None, len(image_ids)), prefix)
        start = torch.full_like(image_ids[:, :1], self.image_start)
        inputs = torch.cat([start, image_ids[:, :-1]], 1)
        h = self.gpt(torch.cat([prefix, self.embed_images(inputs)], 1))
        return self.image_head(h[:, self.cfg.prefix_tokens:])

    def next_token_logits(self, image_prefix: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the next image token, recomputing everything (the reference for the cache)."""
        start = torch.full((len(prefix), 1), self.image_start, dtype=torch.long, device=prefix.device)
        h = self.gpt(torch.cat([prefix, self.embed_images(torch.cat([start, image_prefix], 1))], 1))
        return self.image_head(h[:, -1])

    @torch.no_grad()
    def generate(self, embedding: torch.Tensor, generator: torch.Generator | None = None, guidance_scale: float = 1.0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, use_cache: bool = True) -> torch.Tensor:
        """Image codes (B, N) for unit condition embeddings (B, E) (already bridged if they are text embeddings)."""
        batch, n = len(embedding), self.cfg.image_tokens
        cond, null = self.prefix(embedding), self.prefix(None, batch)
        if not use_cache:
            return sample_without_cache(self.next_token_logits, cond, null, batch, n, generator, guidance_scale,
                                        temperature, top_k, top_p, embedding.device)
        prefix = torch.cat([cond, null]) if guidance_scale != 1.0 else cond
        start = torch.full((len(prefix), 1), self.image_start, dtype=torch.long, device=embedding.device)
        return sample_with_cache(self.gpt, torch.cat([prefix, self.embed_images(start)], 1), None,
                                 lambda ids, j: self.embed_images(ids[:, None], offset=j), self.image_head, n,
                                 generator, guidance_scale, temperature, top_k, top_p)


def noisy_condition(embedding: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A unit embedding blurred by Gaussian noise of `std` per component (scaled for unit norm), renormalised."""
    if std == 0:
        return embedding
    noise = torch.randn(embedding.shape, generator=generator).to(embedding.device) / embedding.shape[-1] ** 0.5
    return F.normalize(embedding + std * noise, dim=-1)
