"""Recipes of the autoregressive family (chapters "Images as tokens" and "Birds token by token"): the VQ-VAE
image tokenizer, whose card holds the ceiling any generator of its tokens can reach, the DALL-E-style GPT
(caption tokens, then image tokens) and the CLIP-GEN-style GPT (trained on images only)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..autoregressive import (ClipGenConfig, ClipGenGPT, DalleConfig, DalleGPT, VQVAE, VQVAEConfig,
    codebook_perplexity, dalle_loss, caption_ids, noisy_condition, vqvae_loss)
from ..clip import embed_captions, embed_images
from ..data.augment import augment, batch_generator, to_unit_range
from ..train import Phase, TrainConfig
from .image_tokenizer import TINY_TOKENIZER, image_tokenizer_of, load_image_tokenizer, tokenizer_record
from .base import Job, Recipe, TextToImage, frozen_clip, knob, model_device, tiny_data
from .. import zoo
from ..autoregressive.dalle import trim_padding
from ..data import synthbirds
from ..data.composition import UNSEEN_SPLIT_SIZE
from ..metrics.alignment import attribute_accuracy_from_predictions
from ..metrics.protocol import judge_versions, load_judges, reference_set, score_images


@dataclass
class VQVAERecipe(Recipe):
    family: ClassVar[str] = "autoregressive"
    colour: ClassVar[str] = "tab:orange"
    role: ClassVar[str] = "tokenizer"
    model_class: ClassVar[type] = VQVAE

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        images = self.data.load("train").images
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size)
        data_variance = float(to_unit_range(images[:2000]).var())
        batch_size, commitment = self.batch_size, model_cfg.commitment

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            return augment(to_unit_range(images[idx]), g, max_shift=0.0)  # flips only

        def step_fn(model, x):
            out = model(x)
            return vqvae_loss(out, x, commitment, data_variance), {
                "perplexity": float(out.perplexity), "used_share": float(out.used_share),
                "mse": float(torch.nn.functional.mse_loss(out.reconstruction.detach(), x))}

        torch.manual_seed(cfg.seed)
        return Job(VQVAE(model_cfg), [Phase("train", step_fn)], batch_fn, cfg, {"data_variance": data_variance})

    def tiny(self) -> "VQVAERecipe":
        tiny = {f: getattr(TINY_TOKENIZER, f) for f in ("channels", "code_dim", "num_codes", "res_blocks")}
        small = dataclasses.replace(self.model_config, **tiny)
        return dataclasses.replace(self, model_config=small, batch_size=8, data=tiny_data(self.data))

    @torch.no_grad()
    def evaluate(self, model: VQVAE, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """Reconstruction error and codebook use on test images, and the protocol's metrics of reconstructed real
        images: the ceiling of any generator that draws these tokens, on the seen split and, under "unseen", on
        the unseen-combinations split (the same part by part)."""

        self.options(options)
        model.eval()
        judges = load_judges(model_device(model))
        seen = _reconstruction_metrics(model, judges, n or 2000, seed, "seen")
        unseen = _reconstruction_metrics(model, judges, min(n or 2000, UNSEEN_SPLIT_SIZE), seed, "unseen")
        return seen | {"unseen": unseen, "judges": judge_versions()}


def _reconstruction_metrics(model: VQVAE, judges, n: int, seed: int, split: str) -> dict[str, Any]:
    """One split's real images through the tokenizer: reconstruction error, codebook use, the judges' reading of
    the real images (`real_attribute_accuracy`) and the protocol's metrics of the reconstructions."""

    device = model_device(model)
    reference = reference_set(n, seed, split=split)
    recon, indices = [], []
    for start in range(0, len(reference.images), 250):
        out = model(reference.images[start: start + 250].to(device))
        recon.append(out.reconstruction.clamp(-1, 1).cpu())
        indices.append(out.indices.cpu())
    recon, indices = torch.cat(recon), torch.cat(indices)
    real_attributes = judges.evaluator.predict(reference.images)[2]
    return {"reconstruction_mse": float(((recon - reference.images) ** 2).mean()),
            "perplexity": codebook_perplexity(indices, model.cfg.num_codes),
            "used_share": float(indices.unique().numel() / model.cfg.num_codes),
            "tokens_per_image": model.tokens_per_image,
            "real_attribute_accuracy": attribute_accuracy_from_predictions(real_attributes,
                                                                           reference.captions).accuracy,
            **score_images(recon, reference, judges, seed), "n": len(recon), "seed": seed, "split": split}


PRESETS = [
    # 8x8 rather than 16x16 tokens: a 3-minute probe of each (N=500) kept 35% attribute accuracy through an 8x8
    # grid and 57% through a 16x16 one, but 16x16 makes every image 256 tokens long, which would cost the GPT
    # about 3x per training step and 4x per sampled image within the same 45 minutes. 3,000 steps of batch 128
    # take about 30 minutes on two cores (0.6 s per step).
    VQVAERecipe(
        "vqvae-birds32", "VQ-VAE image tokenizer: 32x32 birds <-> 8x8 codes of a 512-entry EMA codebook",
        VQVAEConfig(), TrainConfig(steps=3000, lr=1e-3, warmup_steps=100, weight_decay=0.0, ema_decay=None,
                                   seed=0), batch_size=128),
]


# --------------------------------------------------------------------------------------------------------------
# Strategy 1: caption tokens then image tokens (DALL-E, CogView)
# --------------------------------------------------------------------------------------------------------------

MAX_RERANK = 16  # images drawn per caption for reranking: a bound on sampling's time and memory


@dataclass(frozen=True)
class TokenSampling:
    """How a token generator draws: temperature (0 = greedy), top-k (0 = all), nucleus p (1 = all), the
    classifier-free guidance scale on logits, and DALL-E's reranking: draw `rerank` images per caption and keep
    the one mini-CLIP scores highest."""

    temperature: float = knob(1.0, sweep=(0.7, 1.0))
    top_k: int = knob(0, sweep=(0, 32))
    top_p: float = 1.0
    guidance_scale: float = knob(3.0, sweep=(1.0, 3.0, 6.0))
    rerank: int = 1
    LIMITS: ClassVar[dict[str, str]] = {"temperature": ">= 0", "top_k": ">= 0", "top_p": "above 0, at most 1",
                                        "rerank": f"1 to {MAX_RERANK}"}  # what `check` enforces, for --help

    def check(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 keeps every token), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.rerank <= MAX_RERANK:
            raise ValueError(f"rerank must be between 1 and {MAX_RERANK} images per caption, got {self.rerank}")


def token_evaluations(model_config: Any, options: TokenSampling) -> int:
    """A token model's forward passes per image: one per image token (with the key-value cache), doubled by
    classifier-free guidance on the logits, times the reranking's draws."""
    guided = options.guidance_scale not in (0.0, 1.0)
    return model_config.image_tokens * (2 if guided else 1) * options.rerank


def decode_and_rerank(codes, vqvae: VQVAE, options: TokenSampling, device: str) -> TextToImage:
    """Turn `codes(captions, k, generator) -> (B * k, N)` token ids into images; with options.rerank = k > 1 keep,
    per caption, the one of its k images mini-CLIP scores closest to it (DALL-E's reranking)."""
    k = options.rerank
    clip = frozen_clip(device) if k > 1 else None

    def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
        images = vqvae.decode(codes(captions, k, generator)).clamp(-1, 1)
        if k == 1:
            return images
        score = (embed_images(clip, images).to(device).view(len(captions), k, -1)
                 * embed_captions(clip, captions).to(device)[:, None]).sum(-1)  # (B, k) cosines
        return images.view(len(captions), k, *images.shape[1:])[torch.arange(len(captions)), score.argmax(1)]

    return generate


def training_tokens(vqvae: VQVAE, images: torch.Tensor, device: str) -> torch.Tensor:
    """Every training image as tokens, as drawn and mirrored: (2, N, tokens) (index 1 = mirrored)."""
    with torch.no_grad():
        x = to_unit_range(images)
        return torch.stack([torch.cat([vqvae.encode(v[s: s + 500].to(device)).flatten(1).cpu()
                                       for s in range(0, len(v), 500)]) for v in (x, x.flip(-1))])


@dataclass
class DalleRecipe(Recipe):
    tokenizer_model: "str | VQVAEConfig" = "vqvae-birds32"  # a released VQ-VAE, or a config (untrained; tests)
    condition_dropout: float = 0.1  # share of captions replaced by the empty caption (for CFG)

    family: ClassVar[str] = "autoregressive"
    colour: ClassVar[str] = "tab:orange"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = DalleGPT

    def build_job(self, **overrides) -> Job:
        import base64

        cfg = self.config(**overrides)
        data = self.data.load("train")
        vqvae = load_image_tokenizer(self.tokenizer_model, cfg.device)
        bpe = synthbirds.bpe_tokenizer(vocab_size=self.model_config.text_vocab)
        model_cfg = dataclasses.replace(self.model_config, text_vocab=len(bpe), image_vocab=vqvae.cfg.num_codes,
                                        image_tokens=vqvae.tokens_per_image)
        length = model_cfg.text_length
        codes = training_tokens(vqvae, data.images, cfg.device)  # (2, N, 64): as drawn, mirrored
        all_ids = torch.stack([caption_ids(bpe, list(c), length) for c in data.captions])  # (N, 10, L)
        batch_size, drop_share = self.batch_size, self.condition_dropout

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(codes.shape[1], (batch_size,), generator=g)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            flip = (torch.rand(batch_size, generator=g) < 0.5).long()
            text = all_ids[idx, which]
            dropped = torch.rand(batch_size, generator=g) < drop_share
            text[dropped] = torch.tensor([model_cfg.bos_id] + [model_cfg.pad_id] * (length - 1))
            return trim_padding(text, model_cfg.pad_id), codes[flip, idx]

        def step_fn(model, batch):  # calls the model, not model.loss: under DDP only forward averages gradients
            text, image = batch
            out = dalle_loss(*model(text, image), text, image, model_cfg.text_loss_weight, model_cfg.pad_id)
            return out.loss, {"text_loss": out.text_loss.item(), "image_loss": out.image_loss.item()}

        torch.manual_seed(cfg.seed)
        model = DalleGPT(model_cfg)
        record = tokenizer_record(self.tokenizer_model)
        model.text_tokenizer, model.vqvae_record = bpe, record  # as `zoo.load` attaches them from the card
        extra = {"bpe_model": base64.b64encode(bpe.model_proto).decode(), "vqvae": record,
                 "condition_dropout": drop_share}
        return Job(model, [Phase("train", step_fn)], batch_fn, cfg, extra)

    def tiny(self) -> "DalleRecipe":
        small = dataclasses.replace(self.model_config, dim=32, layers=2, heads=2)
        tokenizer = TINY_TOKENIZER
        return dataclasses.replace(self, model_config=small, batch_size=4, tokenizer_model=tokenizer,
                                   data=tiny_data(self.data))

    def network_evaluations(self, options: Any) -> int:
        return token_evaluations(self.model_config, options)

    def text_to_image(self, model: DalleGPT, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: caption pieces, image tokens drawn one by one (KV cache, CFG on logits),
        decoded by the VQ-VAE; with rerank k, the best of k by mini-CLIP's cosine."""

        options = self.options(options)

        def codes(captions: list[str], k: int, generator: torch.Generator) -> torch.Tensor:
            ids = caption_ids(model.text_tokenizer, captions, model.cfg.text_length).to(device)
            return model.generate(ids.repeat_interleave(k, 0), generator, options.guidance_scale,
                                  options.temperature, options.top_k, options.top_p)

        return decode_and_rerank(codes, image_tokenizer_of(model, device), options, device)



PRESETS.append(
    # 3,600 steps of batch 64: about 0.55 s per step on two cores (captions trimmed to their batch's longest), 33 min
    DalleRecipe(
        "dalle-birds32", "DALL-E-style GPT: SentencePiece caption tokens, then the 64 VQ-VAE tokens of the image",
        DalleConfig(), TrainConfig(steps=3600, lr=1e-3, betas=(0.9, 0.95), warmup_steps=200, weight_decay=0.01,
                                   ema_decay=0.999, ema_warmup=True, seed=0), batch_size=64,
        sampling=TokenSampling()))


# --------------------------------------------------------------------------------------------------------------
# Strategy 2: image tokens from a CLIP embedding, trained on images only (CLIP-GEN)
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipGenSampling(TokenSampling):
    """As `TokenSampling`, and whether to move the prompt's text embedding across the modality gap first."""

    bridge: bool = True


@dataclass
class ClipGenRecipe(Recipe):
    tokenizer_model: "str | VQVAEConfig" = "vqvae-birds32"
    condition_dropout: float = 0.1  # share of images whose embedding is replaced by the null prefix (for CFG)

    family: ClassVar[str] = "autoregressive"
    colour: ClassVar[str] = "tab:orange"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = ClipGenGPT

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        vqvae = load_image_tokenizer(self.tokenizer_model, cfg.device)
        clip = frozen_clip(cfg.device)
        codes = training_tokens(vqvae, data.images, cfg.device)  # (2, N, 64)
        with torch.no_grad():  # the CLIP image embedding of every training image, as drawn and mirrored
            x = to_unit_range(data.images)
            embeddings = torch.stack([embed_images(clip, v) for v in (x, x.flip(-1))]).cpu()  # (2, N, E)
        model_cfg = dataclasses.replace(self.model_config, embed_dim=embeddings.shape[-1],
                                        image_vocab=vqvae.cfg.num_codes, image_tokens=vqvae.tokens_per_image)
        g = torch.Generator().manual_seed(cfg.seed)  # captions are read only for the mean text embedding
        sample = [data.captions[int(i)][int(j)] for i, j in zip(torch.randint(len(data.captions), (4000,), generator=g),
                                                                torch.randint(10, (4000,), generator=g))]
        text_mean = embed_captions(clip, sample).mean(0)
        image_mean = embeddings[0].mean(0)
        batch_size, drop_share, noise = self.batch_size, self.condition_dropout, model_cfg.condition_noise

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(codes.shape[1], (batch_size,), generator=g)
            flip = (torch.rand(batch_size, generator=g) < 0.5).long()
            condition = noisy_condition(embeddings[flip, idx], noise, g)
            return condition, codes[flip, idx], torch.rand(batch_size, generator=g) < drop_share

        def step_fn(model, batch):
            condition, image, dropped = batch
            logits = model(condition, image, dropped)
            return F.cross_entropy(logits.flatten(0, 1), image.flatten()), {}

        torch.manual_seed(cfg.seed)
        model = ClipGenGPT(model_cfg)
        model.image_mean.copy_(image_mean)
        model.text_mean.copy_(text_mean)
        record = tokenizer_record(self.tokenizer_model)
        model.vqvae_record = record
        return Job(model, [Phase("train", step_fn)], batch_fn, cfg,
                   {"vqvae": record, "condition_dropout": drop_share, "trained_on": "images only (no captions)"})

    def tiny(self) -> "ClipGenRecipe":
        small = dataclasses.replace(self.model_config, dim=32, layers=2, heads=2)
        tokenizer = TINY_TOKENIZER
        return dataclasses.replace(self, model_config=small, batch_size=4, tokenizer_model=tokenizer,
                                   data=tiny_data(self.data))

    def network_evaluations(self, options: Any) -> int:
        return token_evaluations(self.model_config, options)

    def text_to_image(self, model: ClipGenGPT, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: mini-CLIP's text embedding of each caption (moved across the modality
        gap with `bridge`) in place of an image embedding, then tokens as for the DALL-E model."""
        options = self.options(options)
        clip = frozen_clip(device)

        def codes(captions: list[str], k: int, generator: torch.Generator) -> torch.Tensor:
            if isinstance(captions, str):
                raise ValueError("expected a list of captions, got one string; wrap it in a list")
            embedding = embed_captions(clip, captions).to(device)
            if options.bridge:
                embedding = model.bridge(embedding)
            return model.generate(embedding.repeat_interleave(k, 0), generator, options.guidance_scale,
                                   options.temperature, options.top_k, options.top_p)

        return decode_and_rerank(codes, image_tokenizer_of(model, device), options, device)



PRESETS.append(
    ClipGenRecipe(
        "clipgen-birds32", "CLIP-GEN-style GPT: the 64 VQ-VAE tokens of an image from its mini-CLIP image embedding, "
        "trained without captions; prompts enter through the text embedding",
        ClipGenConfig(), TrainConfig(steps=2400, lr=1e-3, betas=(0.9, 0.95), warmup_steps=200, weight_decay=0.01,
                                     ema_decay=0.999, ema_warmup=True, seed=0), batch_size=64,
        sampling=ClipGenSampling()))
