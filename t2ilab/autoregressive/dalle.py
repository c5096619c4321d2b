"""Strategy 1 of the autoregressive family: caption tokens, then image tokens, in one sequence (chapter "Birds
token by token"; survey Sec. 1.2).

After DALL-E (Ramesh et al., 2021) and CogView (Ding et al., 2021), at the scale of this course: the caption is cut
into SentencePiece BPE tokens, the image into the VQ-VAE's 8x8 codes; one causal transformer reads

    [<bos> t_1 ... t_L <pad>...] [<image> i_1 ... i_63]    and predicts    t_2 ... t_L    and    i_1 ... i_64

with separate token and position embeddings for the two parts (padding is masked out of attention). The loss
weights text and image (DALL-E: 1/8 and 7/8). A share of captions is replaced by the empty caption <bos> during
training, so that the same network also gives p(image tokens) without text, and classifier-free guidance
(`t2ilab.guidance`) sharpens the logits at sampling time:

    logits = logits(empty) + s * (logits(caption) - logits(empty))                  (Ho & Salimans, 2021)

Sampling draws the 64 image tokens one by one with a KV cache (`generate`); `next_token_logits` is the same
model without a cache, the reference the cache is tested against.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data.tokenizers import BPETokenizer
from ..registry import register_model
from .gpt import GPT, GPTConfig, sample_with_cache, sample_without_cache


@dataclass
class DalleConfig:
    text_vocab: int = 512  # the SentencePiece model's size
    text_length: int = 40  # caption tokens, <bos> and <eos> included; longer captions are refused
    image_vocab: int = 512  # the VQ-VAE's codebook size
    image_tokens: int = 64  # 8x8
    dim: int = 192  # 2.2 M parameters: about 0.9 s per batch of 64 on two CPU cores (256 wide x 6 deep: 2.7 s)
    layers: int = 4
    heads: int = 6
    dropout: float = 0.0
    text_loss_weight: float = 0.125  # DALL-E's 1/8; the image tokens get the rest
    pad_id: int = 0
    bos_id: int = 2


class DalleLoss(NamedTuple):
    loss: torch.Tensor
    text_loss: torch.Tensor
    image_loss: torch.Tensor


def dalle_loss(text_logits: torch.Tensor, image_logits: torch.Tensor, text_ids: torch.Tensor,
               image_ids: torch.Tensor, text_loss_weight: float, pad_id: int) -> DalleLoss:
    """Weighted cross-entropy of the next caption token (padding ignored) and of every image token."""
    targets = text_ids[:, 1:].masked_fill(text_ids[:, 1:] == pad_id, -100)
    text_loss = F.cross_entropy(text_logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    image_loss = F.cross_entropy(image_logits.flatten(0, 1), image_ids.flatten())
    return DalleLoss(text_loss_weight * text_loss + (1 - text_loss_weight) * image_loss, text_loss, image_loss)


def trim_padding(text_ids: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Drop the padding columns every caption of the batch has: (B, L) -> (B, L'). Padding is masked out of
    attention, so the model's image logits do not change; the sequence, and the cost of every step, gets shorter."""
    used = int((text_ids != pad_id).sum(1).max())
    return text_ids[:, :used]


def caption_ids(tokenizer, captions: list[str], length: int, bos_id: int = 2, eos_id: int = 3,
                pad_id: int = 0) -> torch.Tensor:
    """Captions -> (B, length) ids `<bos> pieces <eos> <pad>...`; a clear ValueError, naming the caption, for a
    bare string, an empty caption, characters the tokenizer never saw, or a caption longer than `length`."""
    if isinstance(captions, str):
        raise ValueError("expected a list of captions, got one string; wrap it in a list")
    rows = []
    for i, caption in enumerate(captions):
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"caption {i} is empty")
        unknown = tokenizer.unknown_words(caption)
        if unknown:
            raise ValueError(f"caption {i} ({caption!r}) has characters the tokenizer never saw in: {unknown}")
        ids = [bos_id] + tokenizer.encode(caption) + [eos_id]
        if len(ids) > length:
            raise ValueError(f"caption {i} is {len(ids)} tokens long with <bos> and <eos>; the model reads at most "
                             f"{length}: {caption!r}")
        rows.append(ids + [pad_id] * (length - len(ids)))
    return torch.tensor(rows, dtype=torch.long)


@register_model
class DalleGPT(nn.Module):
    """(caption ids (B, L), image codes (B, N)) -> next-token logits for both parts."""

    config_class = DalleConfig

    def restore_card_data(self, card: dict) -> None:
        """What its card stores beside the weights (called by `zoo.load`): the SentencePiece model of its captions,
        and the image tokenizer it was trained on (name and sha256, checked when it is used)."""
        if "bpe_model" in card:
            self.text_tokenizer = BPETokenizer(base64.b64decode(card["bpe_model"]))
        if "vqvae" in card:
            self.vqvae_record = card["vqvae"]

    def __init__(self, cfg: DalleConfig):
        super().__init__()
        self.cfg = cfg
        self.text_embedding = nn.Embedding(cfg.text_vocab, cfg.dim)
        self.text_position = nn.Parameter(torch.randn(cfg.text_length, cfg.dim) * 0.02)
        self.image_embedding = nn.Embedding(cfg.image_vocab + 1, cfg.dim)  # + the <image> start token
        self.image_position = nn.Parameter(torch.randn(cfg.image_tokens, cfg.dim) * 0.02)
        self.gpt = GPT(GPTConfig(cfg.dim, cfg.layers, cfg.heads, dropout=cfg.dropout))
        self.text_head = nn.Linear(cfg.dim, cfg.text_vocab, bias=False)
        self.image_head = nn.Linear(cfg.dim, cfg.image_vocab, bias=False)

    @property
    def image_start(self) -> int:
        return self.cfg.image_vocab

    def null_text(self, batch: int, device=None, length: int | None = None) -> torch.Tensor:
        """The empty caption: <bos> and padding, (B, length) (default: the model's text length)."""
        ids = torch.full((batch, length or self.cfg.text_length), self.cfg.pad_id, dtype=torch.long, device=device)
        ids[:, 0] = self.cfg.bos_id
        return ids

    def embed(self, text_ids: torch.Tensor, image_inputs: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Text (B, L) and image inputs (B, n) starting at image position `offset` -> (B, L + n, dim)."""
        parts = []
        if text_ids.shape[1]:
            parts.append(self.text_embedding(text_ids) + self.text_position[: text_ids.shape[1]])
        n = image_inputs.shape[1]
        parts.append(self.image_embedding(image_inputs) + self.image_position[offset: offset + n])
        return torch.cat(parts, 1)

    def pad_mask(self, text_ids: torch.Tensor, image_positions: int) -> torch.Tensor:
        """(B, L + n): True at caption padding; image positions are never padding."""
        images = torch.zeros(len(text_ids), image_positions, dtype=torch.bool, device=text_ids.device)
        return torch.cat([text_ids == self.cfg.pad_id, images], 1)

    def forward(self, text_ids: torch.Tensor, image_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: text logits (B, L - 1, text_vocab) for t_2..t_L, image logits (B, N, image_vocab)."""
        length = text_ids.shape[1]
        if length > self.cfg.text_length or image_ids.shape[1] != self.cfg.image_tokens:
            raise ValueError(f"expected caption ids (B, <={self.cfg.text_length}) and image codes "
                             f"(B, {self.cfg.image_tokens}), got {tuple(text_ids.shape)} and {tuple(image_ids.shape)}")
        start = torch.full_like(image_ids[:, :1], self.image_start)
        inputs = torch.cat([start, image_ids[:, :-1]], 1)  # position L + j reads i_{j-1} and predicts i_j
        h = self.gpt(self.embed(text_ids, inputs), self.pad_mask(text_ids, inputs.shape[1]))
        return self.text_head(h[:, : length - 1]), self.image_head(h[:, length:])

    def loss(self, text_ids: torch.Tensor, image_ids: torch.Tensor) -> DalleLoss:
        return dalle_loss(*self(text_ids, image_ids), text_ids, image_ids, self.cfg.text_loss_weight, self.cfg.pad_id)

    def next_token_logits(self, image_prefix: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, image_vocab) of the next image token after `image_prefix` (B, n), recomputing everything:
        the reference for `generate`'s cache. The caption comes last, so `classifier_free` can wrap it."""
        start = torch.full((len(text_ids), 1), self.image_start, dtype=torch.long, device=text_ids.device)
        inputs = torch.cat([start, image_prefix], 1)
        h = self.gpt(self.embed(text_ids, inputs), self.pad_mask(text_ids, inputs.shape[1]))
        return self.image_head(h[:, -1])

    @torch.no_grad()
    def generate(self, text_ids: torch.Tensor, generator: torch.Generator | None = None, guidance_scale: float = 1.0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, use_cache: bool = True) -> torch.Tensor:
        """Image codes (B, N) for captions (B, L), token by token; with CFG the caption and the empty caption run
        in one batch of 2B sharing the cache."""
        text_ids = trim_padding(text_ids, self.cfg.pad_id)
        batch, n = len(text_ids), self.cfg.image_tokens
        guided = guidance_scale != 1.0
        null = self.null_text(batch, text_ids.device, text_ids.shape[1])
        if not use_cache:  # the reference: the whole sequence again for every token
            return sample_without_cache(self.next_token_logits, text_ids, null, batch, n, generator, guidance_scale,
                                        temperature, top_k, top_p, text_ids.device)
        text = torch.cat([text_ids, null]) if guided else text_ids
        start = torch.full((len(text), 1), self.image_start, dtype=torch.long, device=text_ids.device)
        return sample_with_cache(self.gpt, self.embed(text, start), self.pad_mask(text, 1),
                                 lambda ids, j: self.embed(text[:, :0], ids[:, None], offset=j), self.image_head, n,
                                 generator, guidance_scale, temperature, top_k, top_p)
