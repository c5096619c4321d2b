"""Autoregressive text-to-image (chapters "Images as tokens" and "Birds token by token").

`vqvae.py` turns an image into a grid of discrete codes and back; `gpt.py` is the causal transformer with a KV
cache and the token-choosing rules; `dalle.py` puts caption tokens and image tokens in one sequence (strategy 1);
`clipgen.py` draws image tokens from a CLIP embedding and is trained without captions (strategy 2).
"""
from .clipgen import ClipGenConfig, ClipGenGPT, noisy_condition
from .dalle import DalleConfig, DalleGPT, dalle_loss, caption_ids
from .gpt import GPT, GPTConfig, choose_tokens, filter_logits
from .vqvae import VQVAE, VectorQuantizer, VQVAEConfig, codebook_perplexity, kmeans, vqvae_loss

__all__ = ["ClipGenConfig", "ClipGenGPT", "DalleConfig", "DalleGPT", "GPT", "GPTConfig", "VQVAE", "VQVAEConfig",
           "VectorQuantizer", "choose_tokens", "codebook_perplexity", "dalle_loss", "caption_ids",
           "filter_logits", "kmeans", "noisy_condition", "vqvae_loss"]
