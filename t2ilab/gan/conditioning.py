"""The GANs' condition: a caption's mini-CLIP sentence embedding, scaled to unit variance per component."""
from __future__ import annotations

import torch

from ..clip import embed_captions


def sentence_features(clip, captions: list[str], device: str = "cpu") -> torch.Tensor:
    """Mini-CLIP sentence embeddings scaled to unit variance per component (B, embed_dim): the GANs' condition."""
    emb = embed_captions(clip, captions).to(device)
    return emb * emb.shape[1] ** 0.5
