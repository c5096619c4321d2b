"""The image tokenizer a generator draws through, shared by the families that use one (the token models and latent
diffusion): which released VQ-VAE a generator was trained on, recorded in its card by name and sha256, and loading it
back with a check that its weights have not changed since."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from .. import zoo
from ..autoregressive import VQVAE, VQVAEConfig

# the untrained image tokenizer of every family's tiny recipe (tests): 16 codes of 8 dimensions
TINY_TOKENIZER = VQVAEConfig(channels=(8, 16), code_dim=8, num_codes=16, res_blocks=1)


def vqvae_record(name: str) -> dict[str, Any]:
    """What a generator's card records of its image tokenizer: the released name and its weights' sha256."""

    return {"name": name, "sha256": zoo.load_card(name)["sha256"]}


def load_image_tokenizer(source: "str | VQVAEConfig", device: str = "cpu", expected: dict | None = None) -> VQVAE:
    """The released VQ-VAE `source`, or an untrained one of config `source` (tests). With `expected` (the record a
    generator's card holds), a tokenizer whose weights changed since the generator was trained is refused."""

    if isinstance(source, VQVAEConfig):
        torch.manual_seed(0)
        return VQVAE(source).to(device).eval()
    if expected is not None:
        actual = zoo.load_card(source)["sha256"]
        if actual != expected["sha256"]:
            raise ValueError(f"the generator was trained on the tokens of {expected['name']}.safetensors with sha256 "
                             f"{expected['sha256'][:16]}..., but {source}.safetensors now has {actual[:16]}...: "
                             f"retrain the generator, or restore that tokenizer")
    return zoo.load(source, device=device)


def image_tokenizer_of(model: nn.Module, device: str) -> VQVAE:
    """The VQ-VAE a token generator was trained on, from the record its card (or its build) attached."""
    record = model.vqvae_record
    if record.get("name") is None:  # an untrained tokenizer of a test config
        config = VQVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()})
        return load_image_tokenizer(config, device)
    return load_image_tokenizer(record["name"], device, expected=record)


def tokenizer_record(source: "str | VQVAEConfig") -> dict[str, Any]:
    """The record of a generator's image tokenizer: `vqvae_record` of a released one, or the config of an untrained
    one (tests)."""
    return (vqvae_record(source) if isinstance(source, str)
            else {"name": None, "config": dataclasses.asdict(source)})
