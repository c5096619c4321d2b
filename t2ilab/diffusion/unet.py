"""A compact U-Net for 32x32 noise prediction, optionally conditioned on text (chapter "Diffusion from noise to birds").

After the DDPM U-Net (Ho et al., 2020; Ronneberger et al., 2015): residual blocks at three resolutions with a
sinusoidal time embedding added inside each block, self-attention at 8x8, and skip connections from the encoder
to the decoder. Text conditioning follows GLIDE (Nichol et al., 2022) and Imagen (Saharia et al., 2022) in a small
way: the frozen mini-CLIP sentence embedding is added to the time embedding, and the decoder's 8x8 and 16x16
features cross-attend to the per-word features. For classifier-free guidance the condition of a random share of
training examples is replaced by a learned null condition (`TextCondition.dropped`).

The network itself knows nothing about noise schedules: it maps (x_t, t, condition) to its prediction, eps or v.
Its config records which (`prediction`) and under which schedule it was trained (`schedule`), so that a released
model carries what `diffusion.denoiser.as_denoiser` needs to turn its output into the noise the samplers expect.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from ..nn import CrossAttention, Downsample, ResBlock, SelfAttention, Upsample, timestep_embedding
from ..nn.blocks import group_norm
from ..registry import register_model


class TextCondition(NamedTuple):
    """What the U-Net reads of a caption: mini-CLIP's word features, sentence embedding, padding, and which rows
    are replaced by the learned null condition (for condition dropout and the unconditional half of CFG)."""

    words: torch.Tensor  # (B, T, word_dim)
    sentence: torch.Tensor  # (B, sentence_dim)
    pad_mask: torch.Tensor  # (B, T) True at padding
    dropped: torch.Tensor  # (B,) bool

    def as_null(self) -> "TextCondition":
        return self._replace(dropped=torch.ones_like(self.dropped))


@dataclass
class UNetConfig:
    image_size: int = 32
    in_channels: int = 3
    channels: tuple[int, ...] = (64, 96, 128)  # at 32, 16 and 8 pixels
    blocks_per_level: int = 1
    attention_heads: int = 4
    time_dim: int = 256
    word_dim: int | None = None  # mini-CLIP text_dim; None builds an unconditional U-Net
    sentence_dim: int | None = None  # mini-CLIP embed_dim
    cross_attention_levels: tuple[int, ...] = (1, 2)  # decoder levels (0 = 32x32) with cross-attention
    prediction: str = "eps"  # what the network outputs: "eps" (DDPM) or "v" (Salimans & Ho, 2022)
    schedule: str = "linear"  # the noise schedule it was trained with
    dropout: float = 0.0  # 0.1 in DDPM's long CIFAR-10 runs; short runs here learn faster without


class SpatialSelfAttention(nn.Module):
    """Self-attention over the pixels of a feature map, with a residual: (B, C, H, W) -> same."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = SelfAttention(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        y = self.attn(rearrange(self.norm(x), "b c h w -> b (h w) c"))
        return x + rearrange(y, "b (h w) c -> b c h w", h=h)


class SpatialCrossAttention(nn.Module):
    """Pixels attend to caption words: (B, C, H, W), words (B, T, D) -> (B, C, H, W)."""

    def __init__(self, channels: int, word_dim: int, heads: int):
        super().__init__()
        self.attn = CrossAttention(channels, word_dim, heads)

    def forward(self, x: torch.Tensor, words: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        y = self.attn(rearrange(x, "b c h w -> b (h w) c"), words, pad_mask)
        return rearrange(y, "b (h w) c -> b c h w", h=h)


@register_model
class UNet(nn.Module):
    """eps_theta(x_t, t[, text]) or v_theta: (B, C, H, W), (B,) -> (B, C, H, W); `as_denoiser` turns it into noise."""

    config_class = UNetConfig

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        self.prediction = cfg.prediction  # read by the samplers, which refuse anything but noise
        ch, td = cfg.channels, cfg.time_dim
        self.conditional = cfg.word_dim is not None
        self.time_mlp = nn.Sequential(nn.Linear(td, td), nn.SiLU(), nn.Linear(td, td))
        if self.conditional:
            if cfg.sentence_dim is None:
                raise ValueError("a text-conditional U-Net needs both word_dim and sentence_dim")
            self.sentence_proj = nn.Sequential(nn.Linear(cfg.sentence_dim, td), nn.SiLU(), nn.Linear(td, td))
            self.null_sentence = nn.Parameter(torch.zeros(cfg.sentence_dim))
            self.null_words = nn.Parameter(torch.randn(cfg.word_dim) * 0.02)
        self.stem = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)

        # encoder: blocks at each level, then downsample; remember every output for the skips
        self.down = nn.ModuleList()
        skip_channels = [ch[0]]
        for level, c in enumerate(ch):
            c_in = ch[level - 1] if level else ch[0]
            for _ in range(cfg.blocks_per_level):
                self.down.append(ResBlock(c_in, c, td, cfg.dropout))
                c_in = c
                skip_channels.append(c)
            if level + 1 < len(ch):
                self.down.append(Downsample(c))
                skip_channels.append(c)
        self.mid1 = ResBlock(ch[-1], ch[-1], td, cfg.dropout)
        self.mid_attn = SpatialSelfAttention(ch[-1], cfg.attention_heads)
        self.mid2 = ResBlock(ch[-1], ch[-1], td, cfg.dropout)

        # decoder: one more block per level than the encoder, each eating one skip
        self.up = nn.ModuleList()
        c_in = ch[-1]
        for level in reversed(range(len(ch))):
            c = ch[level]
            for _ in range(cfg.blocks_per_level + 1):
                block = nn.ModuleDict({"res": ResBlock(c_in + skip_channels.pop(), c, td, cfg.dropout)})
                if level == len(ch) - 1:
                    block["self_attn"] = SpatialSelfAttention(c, cfg.attention_heads)
                if self.conditional and level in cfg.cross_attention_levels:
                    block["cross_attn"] = SpatialCrossAttention(c, cfg.word_dim, cfg.attention_heads)
                self.up.append(block)
                c_in = c
            if level > 0:
                self.up.append(nn.ModuleDict({"upsample": Upsample(c)}))
        self.out = nn.Sequential(group_norm(ch[0]), nn.SiLU(), nn.Conv2d(ch[0], cfg.in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # start as a zero predictor: a stable first step
        nn.init.zeros_(self.out[-1].bias)

    def _condition(self, text: TextCondition) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dropped = text.dropped.view(-1, 1)
        sentence = torch.where(dropped, self.null_sentence.to(text.sentence.dtype), text.sentence)
        words = torch.where(dropped[:, :, None], self.null_words.to(text.words.dtype), text.words)
        # a dropped caption is one null word: mask everything but the first position
        first_only = torch.ones_like(text.pad_mask)
        first_only[:, 0] = False
        pad_mask = torch.where(dropped, first_only, text.pad_mask)
        # the sentence embedding is a unit vector: rescale it to unit variance per component, like the time features
        return self.sentence_proj(sentence * sentence.shape[-1] ** 0.5), words, pad_mask

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: TextCondition | None = None) -> torch.Tensor:
        if self.conditional and text is None:
            raise ValueError("this U-Net is text-conditional: pass a TextCondition (use .as_null() for none)")
        emb = self.time_mlp(timestep_embedding(t, self.cfg.time_dim))  # (B, time_dim)
        words = pad_mask = None
        if self.conditional:
            sentence_emb, words, pad_mask = self._condition(text)
            emb = emb + sentence_emb

        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for block in self.up:
            if "upsample" in block:
                h = block["upsample"](h)
                continue
            h = block["res"](torch.cat([h, skips.pop()], dim=1), emb)
            if "self_attn" in block:
                h = block["self_attn"](h)
            if "cross_attn" in block:
                h = block["cross_attn"](h, words, pad_mask)
        return self.out(h)
