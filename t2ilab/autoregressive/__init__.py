"""Autoregressive text-to-image (chapters "Images as tokens" and "Birds token by token").

`vqvae.py` turns an image into a grid of discrete codes and back; `gpt.py` is the causal transformer with a KV
cache and the token-choosing rules; `dalle.py` puts caption tokens and image tokens in one sequence (strategy 1).
"""
from .dalle import DalleConfig, DalleGPT, dalle_loss, encode_captions
from .gpt import GPT, GPTConfig, choose_tokens, filter_logits
from .vqvae import VQVAE, VectorQuantizer, VQVAEConfig, codebook_perplexity, kmeans, vqvae_loss

__all__ = ["DalleConfig", "DalleGPT", "GPT", "GPTConfig", "VQVAE", "VQVAEConfig", "VectorQuantizer", "choose_tokens",
           "codebook_perplexity", "dalle_loss", "encode_captions", "filter_logits", "kmeans", "vqvae_loss"]
