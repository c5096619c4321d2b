"""Recipes of the autoregressive family (chapters "Images as tokens" and "Birds token by token"): the VQ-VAE
image tokenizer, whose card holds the ceiling any generator of its tokens can reach, and the DALL-E-style GPT."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..autoregressive import VQVAE, DalleConfig, DalleGPT, VQVAEConfig, codebook_perplexity, vqvae_loss
from ..data.augment import augment, batch_generator, to_unit_range
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, model_device, protocol_metrics


@dataclass
class VQVAERecipe(Recipe):
    family: ClassVar[str] = "autoregressive"
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
        small = dataclasses.replace(self.model_config, channels=(8, 16), code_dim=8, num_codes=16, res_blocks=1)
        return dataclasses.replace(self, model_config=small, batch_size=8)

    @torch.no_grad()
    def evaluate(self, model: VQVAE, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """Reconstruction error and codebook use on test images, and the protocol's metrics of reconstructed real
        test images: the ceiling of any generator that draws these tokens."""
        from ..metrics.alignment import attribute_accuracy_from_predictions
        from ..metrics.protocol import load_judges, reference_set, score_images

        self.options(options)
        device = model_device(model)
        model.eval()
        reference = reference_set(n or 2000, seed)
        recon, indices = [], []
        for start in range(0, len(reference.images), 250):
            x = reference.images[start: start + 250].to(device)
            out = model(x)
            recon.append(out.reconstruction.clamp(-1, 1).cpu())
            indices.append(out.indices.cpu())
        recon, indices = torch.cat(recon), torch.cat(indices)
        judges = load_judges(device)
        real_attributes = judges.evaluator.predict(reference.images)[2]
        return {"reconstruction_mse": float(((recon - reference.images) ** 2).mean()),
                "perplexity": codebook_perplexity(indices, model.cfg.num_codes),
                "used_share": float(indices.unique().numel() / model.cfg.num_codes),
                "tokens_per_image": model.tokens_per_image,
                "real_attribute_accuracy": attribute_accuracy_from_predictions(real_attributes,
                                                                               reference.captions).accuracy,
                **score_images(recon, reference, judges, seed), "n": len(recon), "seed": seed}


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

@dataclass(frozen=True)
class TokenSampling:
    """How a token generator draws: temperature (0 = greedy), top-k (0 = all), nucleus p (1 = all), the
    classifier-free guidance scale on logits, and DALL-E's reranking: draw `rerank` images per caption and keep
    the one mini-CLIP scores highest."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance_scale: float = 3.0
    rerank: int = 1

    def check(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 keeps every token), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.rerank < 1:
            raise ValueError(f"rerank must be at least 1, got {self.rerank}")


def vqvae_record(name: str) -> dict[str, Any]:
    """What a generator's card records of its image tokenizer: the released name and its weights' sha256."""
    from .. import zoo

    return {"name": name, "sha256": zoo.load_card(name)["sha256"]}


def load_image_tokenizer(source: "str | VQVAEConfig", device: str = "cpu", expected: dict | None = None) -> VQVAE:
    """The released VQ-VAE `source`, or an untrained one of config `source` (tests). With `expected` (the record a
    generator's card holds), a tokenizer whose weights changed since the generator was trained is refused."""
    from .. import zoo

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


@dataclass
class DalleRecipe(Recipe):
    tokenizer_model: "str | VQVAEConfig" = "vqvae-birds32"  # a released VQ-VAE, or a config (untrained; tests)
    condition_dropout: float = 0.1  # share of captions replaced by the empty caption (for CFG)

    family: ClassVar[str] = "autoregressive"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = DalleGPT

    def build_job(self, **overrides) -> Job:
        import base64

        from ..autoregressive import dalle_loss, encode_captions
        from ..data import synthbirds

        cfg = self.config(**overrides)
        data = self.data.load("train")
        vqvae = load_image_tokenizer(self.tokenizer_model, cfg.device)
        bpe = synthbirds.bpe_tokenizer(vocab_size=self.model_config.text_vocab)
        model_cfg = dataclasses.replace(self.model_config, text_vocab=len(bpe), image_vocab=vqvae.cfg.num_codes,
                                        image_tokens=vqvae.tokens_per_image)
        length = model_cfg.text_length
        with torch.no_grad():  # every training image as tokens, as drawn and mirrored
            images = to_unit_range(data.images)
            codes = torch.stack([torch.cat([vqvae.encode(x[s: s + 500].to(cfg.device)).flatten(1).cpu()
                                            for s in range(0, len(x), 500)]) for x in (images, images.flip(-1))])
        all_ids = torch.stack([encode_captions(bpe, list(c), length) for c in data.captions])  # (N, 10, L)
        batch_size, drop_share = self.batch_size, self.condition_dropout

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            flip = (torch.rand(batch_size, generator=g) < 0.5).long()
            text = all_ids[idx, which]
            dropped = torch.rand(batch_size, generator=g) < drop_share
            text[dropped] = torch.tensor([model_cfg.bos_id] + [model_cfg.pad_id] * (length - 1))
            return text, codes[flip, idx]

        def step_fn(model, batch):
            text, image = batch
            out = dalle_loss(*model(text, image), text, image, model_cfg.text_loss_weight, model_cfg.pad_id)
            return out.loss, {"text_loss": out.text_loss.item(), "image_loss": out.image_loss.item()}

        torch.manual_seed(cfg.seed)
        model = DalleGPT(model_cfg)
        record = (vqvae_record(self.tokenizer_model) if isinstance(self.tokenizer_model, str)
                  else {"name": None, "config": dataclasses.asdict(self.tokenizer_model)})
        model.text_tokenizer, model.vqvae_record = bpe, record  # as `zoo.load` attaches them from the card
        extra = {"bpe_model": base64.b64encode(bpe.model_proto).decode(), "vqvae": record,
                 "condition_dropout": drop_share}
        return Job(model, [Phase("train", step_fn)], batch_fn, cfg, extra)

    def tiny(self) -> "DalleRecipe":
        small = dataclasses.replace(self.model_config, dim=32, layers=2, heads=2)
        tokenizer = VQVAEConfig(channels=(8, 16), code_dim=8, num_codes=16, res_blocks=1)
        return dataclasses.replace(self, model_config=small, batch_size=4, tokenizer_model=tokenizer)

    def text_to_image(self, model: DalleGPT, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: caption pieces, image tokens drawn one by one (KV cache, CFG on logits),
        decoded by the VQ-VAE; with rerank k, the best of k by mini-CLIP's cosine."""
        from ..autoregressive import encode_captions
        from ..metrics.alignment import embed_captions, embed_images

        options = self.options(options)
        record = model.vqvae_record
        if record.get("name") is None:
            vqvae = load_image_tokenizer(VQVAEConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                      for k, v in record["config"].items()}), device)
        else:
            vqvae = load_image_tokenizer(record["name"], device, expected=record)
        clip = frozen_clip(device) if options.rerank > 1 else None
        k = options.rerank

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            ids = encode_captions(model.text_tokenizer, captions, model.cfg.text_length).to(device)
            codes = model.generate(ids.repeat_interleave(k, 0), generator, options.guidance_scale,
                                   options.temperature, options.top_k, options.top_p)
            images = vqvae.decode(codes).clamp(-1, 1)
            if k == 1:
                return images
            score = (embed_images(clip, images).to(device).view(len(captions), k, -1)
                     * embed_captions(clip, captions).to(device)[:, None]).sum(-1)  # (B, k) cosines
            return images.view(len(captions), k, *images.shape[1:])[torch.arange(len(captions)), score.argmax(1)]

        return generate

    def evaluate(self, model: DalleGPT, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        from ..nn import count_parameters

        options = self.options(options)
        device = model_device(model)
        return protocol_metrics(self.text_to_image(model, options, device), n, seed, device, self.name, options,
                                parameters=count_parameters(model))


PRESETS.append(
    DalleRecipe(
        "dalle-birds32", "DALL-E-style GPT: SentencePiece caption tokens, then the 64 VQ-VAE tokens of the image",
        DalleConfig(), TrainConfig(steps=3000, lr=1e-3, betas=(0.9, 0.95), warmup_steps=200, weight_decay=0.01,
                                   ema_decay=0.999, ema_warmup=True, seed=0), batch_size=64,
        sampling=TokenSampling()))
