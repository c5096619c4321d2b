"""Recipes of the diffusion family: the unconditional U-Net and the text-conditional U-Net with condition dropout
for classifier-free guidance (chapters "Diffusion from noise to birds" and "Guiding diffusion with text")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from ..clip import CLIPConfig
from ..data.augment import augment, batch_generator, to_unit_range
from ..diffusion import UNet, UNetConfig, as_denoiser, ddim_sample, ddpm_sample, diffusion_loss
from ..diffusion.latent import LatentUNet, LatentUNetConfig, decode_latents, encode_latents, fit_latent_map
from ..diffusion.pipeline import condition_from_ids, caption_condition, text_model_fn
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, knob, tiny_data
from ..autoregressive import VQVAEConfig
from .image_tokenizer import TINY_TOKENIZER, image_tokenizer_of, load_image_tokenizer, tokenizer_record


DDPM_STEPS = 1000  # every released U-Net's schedule (diffusion.schedules.get_schedule's default T)


@dataclass(frozen=True)
class DiffusionSampling:
    """How a diffusion model draws: DDIM with `steps` network calls (eta 0), or DDPM with all T of them."""

    sampler: Literal["ddim", "ddpm"] = "ddim"
    steps: int = knob(25, sweep=(10, 25, 50, 1000))  # DDIM steps; DDPM always takes every step of the schedule
    LIMITS: ClassVar[dict[str, str]] = {"steps": f"1 to {DDPM_STEPS}"}  # what `check` enforces, for --help

    def check(self) -> None:
        if not 1 <= self.steps <= DDPM_STEPS:
            raise ValueError(f"steps must be between 1 and {DDPM_STEPS} (the schedule's length), got {self.steps}")


@dataclass(frozen=True)
class GuidedSampling(DiffusionSampling):
    """A text-conditional model's sampling, with the classifier-free guidance scale."""

    guidance_scale: float = knob(3.0, sweep=(1.0, 3.0, 6.0))


@dataclass
class DiffusionRecipe(Recipe):
    condition_dropout: float = 0.15  # share of captions replaced by the null condition (CFG training)
    min_snr_gamma: float | None = None  # min-SNR-gamma loss weighting (process.min_snr_weights); None: plain loss

    family: ClassVar[str] = "diffusion"
    colour: ClassVar[str] = "tab:blue"
    role: ClassVar[str] = "generator"
    model_class: ClassVar[type] = UNet

    @property
    def conditional(self) -> bool:
        return self.model_config.word_dim is not None

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size)
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        unet = UNet(model_cfg)
        schedule = as_denoiser(unet).schedule  # the U-Net's own, as for sampling
        images, batch_size = data.images, self.batch_size
        conditional, drop_share = self.conditional, self.condition_dropout
        clip = all_ids = None
        if conditional:
            clip = frozen_clip(cfg.device)
            all_ids = clip.tokenizer.encode_per_image(data.captions)  # (N, 10, T)

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(len(images), (batch_size,), generator=g)
            x = augment(to_unit_range(images[idx]), g, max_shift=0.0)  # flips only: birds face both ways
            if not conditional:
                return (x,)
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            return x, all_ids[idx, which], torch.rand(batch_size, generator=g) < drop_share

        step_fn = self._step_fn(clip, schedule)
        extra = {"condition_dropout": drop_share} if conditional else {}
        return Job(unet, [Phase("train", step_fn)], batch_fn, cfg,
                   extra | ({"min_snr_gamma": self.min_snr_gamma} if self.min_snr_gamma is not None else {}))

    def _step_fn(self, clip, schedule):
        """The training step: the diffusion loss of a batch (x, [ids, dropped]), min-SNR-weighted if asked."""
        prediction, gamma = self.model_config.prediction, self.min_snr_gamma

        def step_fn(model, batch):
            if clip is not None:
                x, ids, dropped = batch
                condition = condition_from_ids(clip, ids, dropped)
                return diffusion_loss(lambda x_t, t: model(x_t, t, condition), x, schedule, prediction,
                                      min_snr_gamma=gamma), {}
            return diffusion_loss(lambda x_t, t: model(x_t, t), batch[0], schedule, prediction,
                                  min_snr_gamma=gamma), {}

        return step_fn

    def options(self, values: Any = None) -> Any:
        """As `Recipe.options`; DDPM takes every step of the schedule, so its options say so (steps = T), and a
        steps value given with it is refused rather than ignored."""
        options = super().options(values)
        if options is not None and options.sampler == "ddpm" and options.steps != DDPM_STEPS:
            if isinstance(values, dict) and "steps" in values:
                raise ValueError(f"the ddpm sampler takes all {DDPM_STEPS} steps of the schedule; steps="
                                 f"{values['steps']} is for the ddim sampler")
            options = dataclasses.replace(options, steps=DDPM_STEPS)
        return options

    def tiny(self) -> "DiffusionRecipe":
        small = dataclasses.replace(self.model_config, channels=(8, 16, 16), time_dim=32, attention_heads=2)
        return dataclasses.replace(self, model_config=small, batch_size=4, data=tiny_data(self.data))

    @property
    def reads_captions(self) -> bool:
        return self.model_config.word_dim is not None

    def network_evaluations(self, options: Any) -> int:
        """One U-Net call per sampler step (DDPM takes every step of the schedule), two where classifier-free
        guidance is on (a scale other than 0 or 1 runs the conditional and the null condition together)."""
        steps = options.steps if options.sampler == "ddim" else DDPM_STEPS
        return steps * (2 if getattr(options, "guidance_scale", 1.0) not in (0.0, 1.0) else 1)

    def text_to_image(self, unet: UNet, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: DDIM (or DDPM) on the U-Net's own schedule, with CFG when text-conditional."""
        options = self.options(options)
        clip = frozen_clip(device) if self.conditional else None
        denoiser = as_denoiser(unet)
        cfg = unet.cfg

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            fn = (text_model_fn(unet, caption_condition(clip, captions, device), options.guidance_scale)
                  if clip is not None else denoiser)
            shape = (len(captions), cfg.in_channels, cfg.image_size, cfg.image_size)
            if options.sampler == "ddpm":
                return ddpm_sample(fn, shape, generator=generator, device=device)
            return ddim_sample(fn, shape, num_steps=options.steps, generator=generator, device=device)

        return generate

    def evaluate(self, model: UNet, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        options = self.options(options)
        if options.sampler == "ddpm":  # what was run: every step of the schedule
            options = dataclasses.replace(options, steps=as_denoiser(model).schedule.num_steps)
        return super().evaluate(model, n, seed, options)


# --------------------------------------------------------------------------------------------------------------
# Latent diffusion: the same U-Net on the image tokenizer's continuous latents (chapter "Diffusion in a latent space")
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatentSampling(GuidedSampling):
    """A latent model's sampling: as `GuidedSampling`, and whether the decoder snaps each latent to its nearest
    codebook entry first (the VQ decoder's own input) or decodes the continuous latent (the default: on real
    test images it keeps more of the attributes, 98.5% against 95.9% through 8 components)."""

    quantize: bool = False


@dataclass
class LatentDiffusionRecipe(DiffusionRecipe):
    tokenizer_model: "str | Any" = "vqvae-birds32"  # a released VQ-VAE, or a VQVAEConfig (untrained; tests)
    components: int = 8  # principal directions of the tokenizer's latents that are diffused (latent.LatentMap)
    whiten: bool = True  # each coordinate scaled to unit variance; False: one shared scale (LDM's scale factor)

    model_class: ClassVar[type] = LatentUNet

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data = self.data.load("train")
        vqvae = load_image_tokenizer(self.tokenizer_model, cfg.device)
        x = to_unit_range(data.images)
        raw = torch.stack([encode_latents(vqvae, v).cpu() for v in (x, x.flip(-1))])  # (2, N, C, h, w): flips
        latent_map = fit_latent_map(raw[0], self.components, self.whiten)
        latents = torch.stack([latent_map.forward(r) for r in raw])  # (2, N, k, h, w)
        model_cfg = LatentUNetConfig(**{**dataclasses.asdict(self.model_config), "in_channels": self.components,
                                        "image_size": raw.shape[-1], "autoencoder_channels": raw.shape[2]})
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's seed
        unet = LatentUNet(model_cfg)
        unet.set_latent_map(latent_map)
        unet.vqvae_record = tokenizer_record(self.tokenizer_model)  # as `zoo.load` attaches it from the card
        clip = frozen_clip(cfg.device)
        all_ids = clip.tokenizer.encode_per_image(data.captions)  # (N, 10, T)
        batch_size, drop_share = self.batch_size, self.condition_dropout

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            idx = torch.randint(latents.shape[1], (batch_size,), generator=g)
            flip = (torch.rand(batch_size, generator=g) < 0.5).long()
            which = torch.randint(all_ids.shape[1], (batch_size,), generator=g)
            return latents[flip, idx], all_ids[idx, which], torch.rand(batch_size, generator=g) < drop_share

        extra = {"condition_dropout": drop_share, "vqvae": unet.vqvae_record, "latent_components": self.components,
                 "latent_whiten": self.whiten, "latent_scale": [round(float(v), 5) for v in latent_map.scale]}
        if self.min_snr_gamma is not None:
            extra["min_snr_gamma"] = self.min_snr_gamma
        return Job(unet, [Phase("train", self._step_fn(clip, as_denoiser(unet).schedule))], batch_fn, cfg, extra)

    def tiny(self) -> "LatentDiffusionRecipe":
        small = dataclasses.replace(self.model_config, channels=(8, 16), time_dim=32, attention_heads=2)
        tokenizer = TINY_TOKENIZER
        return dataclasses.replace(self, model_config=small, batch_size=4, tokenizer_model=tokenizer, components=4,
                                   data=tiny_data(self.data))

    def text_to_image(self, unet: LatentUNet, options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: DDIM (or DDPM) with CFG on the latents, then the VQ-VAE decoder."""

        options = self.options(options)
        clip, vqvae, cfg = frozen_clip(device), image_tokenizer_of(unet, device), unet.cfg

        def generate(captions: list[str], generator: torch.Generator) -> torch.Tensor:
            fn = text_model_fn(unet, caption_condition(clip, captions, device), options.guidance_scale)
            shape = (len(captions), cfg.in_channels, cfg.image_size, cfg.image_size)
            if options.sampler == "ddpm":
                z = ddpm_sample(fn, shape, generator=generator, device=device)
            else:
                z = ddim_sample(fn, shape, num_steps=options.steps, generator=generator, device=device)
            return decode_latents(vqvae, z, unet.latent_map, options.quantize)

        return generate


def unet_config(conditional: bool, schedule: str = "linear") -> UNetConfig:
    clip = CLIPConfig()
    # (32, 64, 96) channels: about 0.9 s per batch of 64 on two CPU cores, so 2,400 steps fit in 45 minutes.
    # v-prediction: with eps-prediction a 600-step run had learnt almost nothing of the caption (its loss with the
    # true caption was within 1% of its loss with the null caption at every t): see diffusion/process.py
    return UNetConfig(channels=(32, 64, 96), word_dim=clip.text_dim if conditional else None,
                      sentence_dim=clip.embed_dim if conditional else None, prediction="v", schedule=schedule)


PRESETS = [
    DiffusionRecipe(
        "diffusion-uncond-birds32", "unconditional DDPM U-Net on SynthBirds-200 train images, 32x32",
        unet_config(False), TrainConfig(steps=2400, lr=2e-3, warmup_steps=100, weight_decay=0.0, ema_decay=0.999,
                                        ema_warmup=True, seed=0), batch_size=64, sampling=DiffusionSampling()),
    DiffusionRecipe(
        "diffusion-text-birds32", "text-conditional DDPM U-Net (frozen clip-birds text tower, 15% condition dropout)",
        # cosine schedule (Nichol & Dhariwal, 2021): at 1,200 steps it gave CFG attribute accuracy 48.4% against the
        # linear schedule's 43.4% (N=300, s=3; benchmarks/text_diffusion_budget.py, and a diagnostic run of the same
        # recipe with schedule="cosine")
        unet_config(True, schedule="cosine"),
        TrainConfig(steps=2400, lr=2e-3, warmup_steps=100, weight_decay=0.0, ema_decay=0.999, ema_warmup=True, seed=0),
        batch_size=64, sampling=GuidedSampling(guidance_scale=3.0)),
]


def latent_unet_config() -> LatentUNetConfig:
    clip = CLIPConfig()
    # k coordinates on the 8x8 grid of vqvae-birds32 (in_channels, image_size and autoencoder_channels are set from
    # the tokenizer and `components` when built); two levels, 8x8 and 4x4, both cross-attending to the caption.
    # 4M parameters, about 0.6 s per step of batch 128 on two CPU cores (channels (128, 192) with two blocks
    # per level: 11M, 1.35 s)
    return LatentUNetConfig(image_size=8, in_channels=8, channels=(96, 128), blocks_per_level=1,
                            cross_attention_levels=(0, 1), word_dim=clip.text_dim, sentence_dim=clip.embed_dim,
                            prediction="v", schedule="cosine")


PRESETS.append(LatentDiffusionRecipe(
    "ldm-text-birds32", "latent diffusion: a text-conditional U-Net on the top 8 principal components of vqvae-birds32's 8x8 "
    "latents (whitened), decoded by its decoder",
    latent_unet_config(),
    TrainConfig(steps=3600, lr=2e-3, warmup_steps=200, weight_decay=0.0, ema_decay=0.999, ema_warmup=True, seed=0),
    # the recipe compared at 3/8 of this budget (benchmarks/latent_recipes.py on one GPU, N=500; attribute accuracy,
    # FID-SB): 8 whitened components 43.1%, 304; one shared scale 36.8%, 504; all 64 channels 34.2%, 368; without
    # min-SNR weighting 46.6%, 278, hence none here
    batch_size=128, sampling=LatentSampling(guidance_scale=3.0)))
