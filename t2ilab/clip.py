"""mini-CLIP: contrastive text and image towers (Radford et al., 2021), the shared text encoder of the course.

Chapter "How we measure text-to-image models". A text tower (transformer over word tokens) and an image tower
(small residual CNN) map a caption and an image to unit vectors in one 256-d space; training pulls matching pairs
together and pushes the other pairs of the batch apart with the symmetric InfoNCE loss and a learned temperature:

    logits = exp(t) * image_emb @ text_emb.T                                   (CLIP, Fig. 3)
    loss   = (cross_entropy(logits, arange(B)) + cross_entropy(logits.T, arange(B))) / 2

Every family reads text through the frozen text tower: `encode_text` returns per-word features (B, T, D) for
cross-attention and a sentence embedding (B, 256) for global conditioning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .data.tokenizers import WordTokenizer
from .nn import ConvEncoder, TransformerBlock
from .registry import register_model


@dataclass
class CLIPConfig:
    vocab_size: int = 80
    max_length: int = 40
    text_dim: int = 192
    text_layers: int = 3
    text_heads: int = 4
    image_channels: tuple[int, ...] = (32, 64, 128)  # per resolution: 32, 16, 8 (then pooled)
    embed_dim: int = 256
    pad_id: int = 0
    init_temperature: float = 0.07


class TextFeatures(NamedTuple):
    words: torch.Tensor  # (B, T, text_dim) per-token features
    sentence: torch.Tensor  # (B, embed_dim) unit-norm sentence embedding
    pad_mask: torch.Tensor  # (B, T) True at padding


class TextTower(nn.Module):
    """Word ids (B, T) -> per-word features and a unit sentence embedding (masked mean of the features)."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.token = nn.Embedding(cfg.vocab_size, cfg.text_dim)
        self.position = nn.Parameter(torch.randn(cfg.max_length, cfg.text_dim) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(cfg.text_dim, cfg.text_heads) for _ in range(cfg.text_layers))
        self.ln = nn.LayerNorm(cfg.text_dim)
        self.proj = nn.Linear(cfg.text_dim, cfg.embed_dim)

    def forward(self, ids: torch.Tensor) -> TextFeatures:
        if ids.dim() != 2 or ids.shape[1] > self.cfg.max_length:
            raise ValueError(f"expected token ids (B, T<={self.cfg.max_length}), got {tuple(ids.shape)}")
        pad_mask = ids == self.cfg.pad_id
        x = self.token(ids) + self.position[: ids.shape[1]]  # (B, T, C)
        for block in self.blocks:
            x = block(x, pad_mask)
        x = self.ln(x)
        keep = (~pad_mask).unsqueeze(-1).float()
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, C)
        return TextFeatures(x, F.normalize(self.proj(pooled), dim=-1), pad_mask)


class ImageTower(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> unit embeddings (B, embed_dim)."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        chans = cfg.image_channels
        self.body = ConvEncoder(chans)
        self.head = nn.Sequential(nn.GroupNorm(8, chans[-1]), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(chans[-1], cfg.embed_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.body(images)), dim=-1)


def contrastive_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of a (B, B) image-to-text logit matrix whose diagonal holds the matching pairs."""
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class CLIPOutput(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor  # (B, B) image-to-text similarities times the temperature
    accuracy: torch.Tensor  # share of images whose own caption scores highest in the batch


@register_model
class MiniCLIP(nn.Module):
    """Text and image towers trained with the symmetric InfoNCE loss."""

    config_class = CLIPConfig

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.text = TextTower(cfg)
        self.image = ImageTower(cfg)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def restore_card_data(self, card: dict) -> None:
        """What its card stores beside the weights (called by `zoo.load`): the word tokenizer."""
        if "tokenizer" in card:
            self.tokenizer = WordTokenizer(card["tokenizer"]["vocab"], card["tokenizer"]["max_length"])

    def encode_text(self, ids: torch.Tensor) -> TextFeatures:
        return self.text(ids)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image(images)

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> CLIPOutput:
        """Contrastive loss of a batch of matching (image, caption) pairs."""
        image_emb = self.encode_image(images)
        text_emb = self.encode_text(ids).sentence
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()  # CLIP clips the scale at 100
        logits = scale * image_emb @ text_emb.T  # (B, B)
        accuracy = (logits.argmax(1) == torch.arange(len(images), device=images.device)).float().mean()
        return CLIPOutput(contrastive_loss(logits), logits, accuracy)


@torch.no_grad()
def embed_captions(clip, captions: list[str], batch_size: int = 1024) -> torch.Tensor:
    """Unit sentence embeddings (N, D) of captions with mini-CLIP's text tower and tokenizer."""
    device = next(clip.parameters()).device
    out = []
    for start in range(0, len(captions), batch_size):
        ids = clip.tokenizer.encode_batch(captions[start: start + batch_size]).to(device)
        out.append(clip.encode_text(ids).sentence.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def embed_images(clip, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Unit image embeddings (N, D) with mini-CLIP's image tower."""
    device = next(clip.parameters()).device
    return torch.cat([clip.encode_image(images[s: s + batch_size].to(device)).float().cpu()
                      for s in range(0, len(images), batch_size)])
