"""Recipes of the GAN family: the single-stage generator with deep fusion (DF-GAN), the StackGAN++ tree and the
denoising diffusion GAN, each trained by two phases of the shared loop, discriminator then generator, with the
generator's EMA released (chapters "One generator, deep fusion", "Growing birds in stages", "The generative
trilemma")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch

from ..data import DataConfig
from ..data.augment import batch_generator
from ..gan import (DDGAN, DDGANConfig, DDGenerator, DFGAN, DFGANConfig, DFGenerator, StackGAN, StackGANConfig,
                   StackGenerator, ddgan_sample, ddgan_schedule, q_pair, sentence_features, truncated_noise)
from ..gan import training as steps
from ..nn import count_parameters
from ..train import Phase, TrainConfig
from .base import Job, Recipe, TextToImage, frozen_clip, knob, tiny_data
from ..viz import image_grid


@dataclass(frozen=True)
class GANSampling:
    """A GAN's sampling: the truncation psi of its noise (1: as trained; 0: one z for every sample)."""

    truncation: float = knob(1.0, sweep=(0.5, 0.7, 1.0))
    LIMITS: ClassVar[dict[str, str]] = {"truncation": "0 to 1"}  # what `check` enforces, for --help

    def check(self) -> None:
        if not 0 <= self.truncation <= 1:
            raise ValueError(f"truncation must be between 0 and 1, got {self.truncation}")


def sample_grid_monitor(draw, clip, z_dim: int, captions: list[str], per_caption: int = 4):
    """A `train` checkpoint hook that saves the EMA generator's images for fixed captions and fixed noise to
    `samples/stepNNNNNN.png` in the run's folder: the GAN's progress, looked at over the run. `draw(generator, z,
    sentences)` runs the generator; the noise comes from a private generator, so resumed runs stay exact."""
    from PIL import Image

    sentences = sentence_features(clip, captions).repeat_interleave(per_caption, 0)
    z = torch.randn(len(sentences), z_dim, generator=torch.Generator().manual_seed(2024))

    def monitor(step: int, model: torch.nn.Module, ema: torch.nn.Module | None, folder) -> None:
        generator = ema if ema is not None else model.generator
        was_training = generator.training
        generator.eval()
        device = next(generator.parameters()).device
        images = draw(generator, z.to(device), sentences.to(device))
        generator.train(was_training)
        out = folder / "samples"
        out.mkdir(exist_ok=True)
        Image.fromarray(image_grid(images, ncol=per_caption * 4)).save(out / f"step{step:06d}.png")

    return monitor


@dataclass
class GANRecipe(Recipe):
    """What the GAN recipes share: a learning rate per player and the conditioned training data. Each recipe's own
    settings live on its own class, so that `Recipe.variant` offers only settings its training reads."""

    generator_lr: float = 1e-4
    discriminator_lr: float = 4e-4

    family: ClassVar[str] = "gan"
    colour: ClassVar[str] = "tab:green"
    role: ClassVar[str] = "generator"

    def conditioned_data(self, cfg: TrainConfig):
        """What every GAN recipe trains on: the training split, the frozen mini-CLIP, the sentence features of
        every caption computed once (N images, captions per image, D), and the model config sized to both."""
        data = self.data.load("train")
        clip = frozen_clip(cfg.device)
        flat = [c for caps in data.captions for c in caps]
        sentences = sentence_features(clip, flat).view(len(data.captions), len(data.captions[0]), -1)
        model_cfg = dataclasses.replace(self.model_config, image_size=self.data.image_size,
                                        sentence_dim=sentences.shape[-1])
        return data, clip, sentences, model_cfg


@dataclass
class DFGANRecipe(GANRecipe):
    generator_lr: float = 1e-4  # DF-GAN's: the discriminator learns 4x faster than the generator
    discriminator_lr: float = 4e-4
    gp_every: int = 4  # lazy regularisation: MA-GP on every k-th step, weighted by k (Karras et al., 2020)
    gp_weight: float = 2.0  # k of MA-GP
    gp_power: float = 6.0  # p of MA-GP
    diffaugment: bool = False  # translation and cutout of real and generated images in both phases

    model_class: ClassVar[type] = DFGenerator

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data, clip, sentences, model_cfg = self.conditioned_data(cfg)
        torch.manual_seed(cfg.seed)
        gan = DFGAN(model_cfg)
        images, batch_size = data.images, self.batch_size
        gp_every, augment = self.gp_every, self.diffaugment

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            x, s, mismatched = steps.caption_pairs(images, sentences, batch_size, g)
            z = torch.randn(batch_size, model_cfg.z_dim, generator=g)
            seed = torch.randint(2 ** 31, (), generator=g)
            return x, s, mismatched, z, seed, torch.tensor(step % gp_every == 0)

        discriminator_step = partial(steps.dfgan_discriminator_loss, gp_every=gp_every, gp_weight=self.gp_weight,
                                     gp_power=self.gp_power, diffaugment=augment)
        generator_step = partial(steps.dfgan_generator_loss, diffaugment=augment)
        phases = [Phase("discriminator", discriminator_step, module="discriminator", lr=self.discriminator_lr),
                  Phase("generator", generator_step, module="generator", lr=self.generator_lr)]
        extra = {"gp_every": gp_every, "gp_weight": self.gp_weight, "gp_power": self.gp_power,
                 "diffaugment": augment, "generator_lr": self.generator_lr,
                 "discriminator_lr": self.discriminator_lr,
                 "discriminator_parameters": count_parameters(gan.discriminator)}
        monitor = sample_grid_monitor(lambda g, z, s: g(z, s), clip, model_cfg.z_dim,
                                      [caps[0] for caps in data.captions[:: max(1, len(data.captions) // 8)][:8]])
        return Job(gan, phases, batch_fn, cfg, extra, monitor)

    def tiny(self) -> "DFGANRecipe":
        small = dataclasses.replace(self.model_config, z_dim=8, generator_width=4, discriminator_width=4,
                                    fusion_hidden=8)
        return dataclasses.replace(self, model_config=small, batch_size=4, gp_every=2, data=tiny_data(self.data))

    def text_to_image(self, generator: "DFGenerator | DFGAN", options: Any = None, device: str = "cpu") -> TextToImage:
        """captions, generator -> images: one forward pass of G(psi * z, s) (of a released generator, or of the
        generator of a training pair)."""
        options = self.options(options)
        generator = getattr(generator, "generator", generator)
        clip = frozen_clip(device)

        @torch.no_grad()
        def generate(captions: list[str], g: torch.Generator) -> torch.Tensor:
            z = truncated_noise(len(captions), generator.cfg.z_dim, options.truncation, g, device)
            return generator(z, sentence_features(clip, captions, device))

        return generate



@dataclass
class StackGANRecipe(GANRecipe):
    """StackGAN++: the generator tree and one discriminator per branch, trained jointly with the non-saturating
    loss (unconditional and matching-aware conditional terms per branch) and CA's KL term."""

    generator_lr: float = 2e-4  # StackGAN-v2's, for both players
    discriminator_lr: float = 2e-4
    kl_weight: float = 2.0
    # not StackGAN++'s: lazy R1 (Mescheder et al., 2018) on every branch's real images, a lever against the
    # discriminators winning (0: off, the published recipe). StyleGAN2's rule of thumb, 2e-4 * side^2 / batch,
    # gives 0.026 for 64 px at batch 32
    r1_gamma: float = 0.0
    r1_every: int = 4

    model_class: ClassVar[type] = StackGenerator

    def __post_init__(self):
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise ValueError(f"r1_gamma must be >= 0 and r1_every >= 1, got {self.r1_gamma} and {self.r1_every}")

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data, clip, sentences, model_cfg = self.conditioned_data(cfg)
        torch.manual_seed(cfg.seed)
        gan = StackGAN(model_cfg)
        images, batch_size, kl_weight = data.images, self.batch_size, self.kl_weight
        gamma, every = self.r1_gamma, self.r1_every

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            x, s, mismatched = steps.caption_pairs(images, sentences, batch_size, g)
            z = torch.randn(batch_size, model_cfg.z_dim, generator=g)
            ca_noise = torch.randn(batch_size, model_cfg.condition_dim, generator=g)
            regularise = torch.tensor(gamma > 0 and step % every == 0)
            return x, s, mismatched, z, ca_noise, regularise

        discriminator_step = partial(steps.stackgan_discriminator_loss, r1_gamma=gamma, r1_every=every)
        generator_step = partial(steps.stackgan_generator_loss, kl_weight=kl_weight)
        phases = [Phase("discriminator", discriminator_step, module="discriminator", lr=self.discriminator_lr),
                  Phase("generator", generator_step, module="generator", lr=self.generator_lr)]
        extra = {"kl_weight": kl_weight, "generator_lr": self.generator_lr, "discriminator_lr": self.discriminator_lr,
                 "discriminator_parameters": count_parameters(gan.discriminator),
                 **({"r1_gamma": gamma, "r1_every": every} if gamma > 0 else {})}
        ca_noise = torch.zeros(1, model_cfg.condition_dim)  # the mean of each caption's conditioning Gaussian
        monitor = sample_grid_monitor(lambda g, z, s: g(z, s, ca_noise.expand(len(z), -1).to(z.device)).images[-1],
                                      clip, model_cfg.z_dim,
                                      [caps[0] for caps in data.captions[:: max(1, len(data.captions) // 8)][:8]])
        return Job(gan, phases, batch_fn, cfg, extra, monitor)

    def tiny(self) -> "StackGANRecipe":
        small = dataclasses.replace(self.model_config, z_dim=8, condition_dim=8, generator_width=2,
                                    discriminator_width=4)
        return dataclasses.replace(self, model_config=small, batch_size=4, data=tiny_data(self.data))

    def text_to_image(self, generator: "StackGenerator | StackGAN", options: Any = None,
                      device: str = "cpu") -> TextToImage:
        """captions, generator -> the last branch's images (the protocol resizes them to its 32x32)."""
        options = self.options(options)
        generator = getattr(generator, "generator", generator)
        clip = frozen_clip(device)

        @torch.no_grad()
        def generate(captions: list[str], g: torch.Generator) -> torch.Tensor:
            z = truncated_noise(len(captions), generator.cfg.z_dim, options.truncation, g, device)
            ca_noise = truncated_noise(len(captions), generator.cfg.condition_dim, options.truncation, g, device)
            return generator(z, sentence_features(clip, captions, device), ca_noise).images[-1]

        return generate


@dataclass
class DDGANRecipe(GANRecipe):
    """The denoising diffusion GAN: a real pair (x_{t-1}, x_t) from the forward process against a generated one
    (x_{t-1} from the posterior given G's x_0), both judged with the caption; the non-saturating loss with a
    matching-aware term (real pairs under another image's caption count as fake) and lazy R1 on real x_{t-1}."""

    generator_lr: float = 1.6e-4  # DDGAN's CIFAR-10 settings: Adam(0.5, 0.9), lr_g 1.6e-4, lr_d 1.25e-4
    discriminator_lr: float = 1.25e-4
    r1_gamma: float = 0.02  # the paper's CIFAR-10 gamma
    r1_every: int = 16  # lazy regularisation (the paper's 15, a power of two here)
    loss: str = "nonsaturating"  # the paper's; or "hinge" (DF-GAN's)
    discriminator_steps: int = 1  # discriminator updates per generator update, each on its own share of the batch

    model_class: ClassVar[type] = DDGenerator

    def __post_init__(self):
        if self.loss not in steps.LOSSES:
            raise ValueError(f"loss must be one of {sorted(steps.LOSSES)}, got {self.loss!r}")
        if self.discriminator_steps < 1 or self.batch_size % self.discriminator_steps:
            raise ValueError(f"discriminator_steps must be a positive divisor of the batch size "
                             f"{self.batch_size}, got {self.discriminator_steps}")

    def build_job(self, **overrides) -> Job:
        cfg = self.config(**overrides)
        data, clip, sentences, model_cfg = self.conditioned_data(cfg)
        torch.manual_seed(cfg.seed)
        gan = DDGAN(model_cfg)
        schedule = ddgan_schedule(model_cfg.num_timesteps, model_cfg.beta_min, model_cfg.beta_max)
        images, batch_size, every, gamma = data.images, self.batch_size, self.r1_every, self.r1_gamma

        def batch_fn(step: int, rank: int, world: int):
            g = batch_generator(cfg.seed, step, rank)
            x, s, mismatched = steps.caption_pairs(images, sentences, batch_size, g)
            t = torch.randint(model_cfg.num_timesteps, (batch_size,), generator=g)
            x_prev, x_t = q_pair(x, t, schedule, g)
            z = torch.randn(batch_size, model_cfg.z_dim, generator=g)
            seed = torch.randint(2 ** 31, (), generator=g)  # the posterior's noise, the same in both phases
            return x_prev, x_t, t, s, mismatched, z, seed, torch.tensor(step % every == 0)

        shares = self.discriminator_steps

        def discriminator_step(share: int):
            return partial(steps.ddgan_discriminator_loss, schedule=schedule, loss=self.loss, r1_gamma=gamma,
                           r1_every=every, share=share, shares=shares)

        generator_step = partial(steps.ddgan_generator_loss, schedule=schedule, loss=self.loss)
        phases = [Phase("discriminator" if k == 0 else f"discriminator{k + 1}", discriminator_step(k),
                        module="discriminator", lr=self.discriminator_lr) for k in range(shares)]
        phases.append(Phase("generator", generator_step, module="generator", lr=self.generator_lr))
        extra = {"r1_gamma": gamma, "r1_every": every, "loss": self.loss, "discriminator_steps": shares,
                 "generator_lr": self.generator_lr,
                 "discriminator_lr": self.discriminator_lr,
                 "discriminator_parameters": count_parameters(gan.discriminator)}
        monitor = sample_grid_monitor(lambda g, z, s: ddgan_sample(g, s, g=torch.Generator().manual_seed(2024)),
                                      clip, model_cfg.z_dim,
                                      [caps[0] for caps in data.captions[:: max(1, len(data.captions) // 8)][:8]])
        return Job(gan, phases, batch_fn, cfg, extra, monitor)

    def tiny(self) -> "DDGANRecipe":
        small = dataclasses.replace(self.model_config, z_dim=8, time_dim=8, generator_width=4, discriminator_width=4,
                                    fusion_hidden=8)
        return dataclasses.replace(self, model_config=small, batch_size=4, r1_every=2, data=tiny_data(self.data))

    def network_evaluations(self, options: Any) -> int:
        """One generator pass per denoising step."""
        return self.model_config.num_timesteps

    def text_to_image(self, generator: "DDGenerator | DDGAN", options: Any = None,
                      device: str = "cpu") -> TextToImage:
        """captions, generator -> images: T reverse steps, each one pass of G and one posterior draw; the truncation
        scales each step's z."""
        options = self.options(options)
        generator = getattr(generator, "generator", generator)
        clip = frozen_clip(device)

        def generate(captions: list[str], g: torch.Generator) -> torch.Tensor:
            return ddgan_sample(generator, sentence_features(clip, captions, device), options.truncation, g)

        return generate


PRESETS = [
    # widths measured at batch 64 on two CPU cores (s per step, MA-GP every 4th step): G 32 / D 32 1.11, 24 / 24
    # 0.72, 32 / 16 0.61, 16 / 16 0.39. The lighter discriminator keeps the generator's width at 3,800 steps in the
    # budget. The generator's learning rate is twice DF-GAN's: 40 epochs here against its ~600.
    DFGANRecipe(
        "dfgan-birds32", "DF-GAN-style generator: deep fusion of the sentence embedding in every UPBlock, one-way "
        "discriminator, hinge loss with MA-GP", DFGANConfig(discriminator_width=16),
        TrainConfig(steps=3800, lr=2e-4, betas=(0.0, 0.9), weight_decay=0.0, warmup_steps=0, cosine_decay=False,
                    grad_clip=0.0, ema_decay=0.999, ema_warmup=True, ema_module="generator", seed=0),
        batch_size=64, sampling=GANSampling(), generator_lr=2e-4),
]
PRESETS.append(StackGANRecipe(
    # Sized when the shipped weights had to stay under 40 MB (the design now allows 100): a 4x4 map of
    # 16 x 32 channels (z 100-d, c 128-d) makes a 9.5M generator (19 MB), 16 x 8 channels with z and c of 64
    # a 0.99M one (0.71 s per step at batch 32 on two CPU cores with D width 16, 0.68 with 8: the
    # discriminators are not what costs). 3,600 steps fill the budget.
    "stackgan-birds64", "StackGAN++-style tree: conditioning augmentation, branches at 16, 32 and 64 pixels, one "
    "discriminator per branch with unconditional and conditional scores",
    StackGANConfig(generator_width=8, z_dim=64, condition_dim=64),
    TrainConfig(steps=3600, lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0, warmup_steps=0, cosine_decay=False,
                grad_clip=0.0, ema_decay=0.999, ema_warmup=True, ema_module="generator", seed=0),
    batch_size=32, data=DataConfig(image_size=64), sampling=GANSampling()))
PRESETS.append(DDGANRecipe(
    # widths measured at batch 64 on two CPU cores (s per step, R1 every 16th step): G 32 / D 32 with fusion MLPs
    # of 128 1.26 (G 2.1M parameters), G 32 / D 16 with MLPs of 64 0.69 (G 1.4M). Learning rates: the paper's
    # ratio (G 1.6e-4, D 1.25e-4) scaled by 1.25 for a run of ~35 epochs against its CIFAR-10 run of 1,800.
    # Second run: the first (DF-GAN's discriminator blocks, MLPs of 64, 3,600 steps; benchmarks/results/
    # ddgan_first_run.json) never left chance; the paper's discriminator blocks cost 1.02 s per step (MLPs of 32,
    # G 1.1M parameters, which the weights budget can hold), so 2,500 steps fill the budget.
    "ddgan-birds32", "denoising diffusion GAN: T = 4 denoising steps, each a text-conditional GAN that predicts x_0 "
    "and draws x_{t-1} from the diffusion posterior; non-saturating loss with a matching-aware term and R1",
    DDGANConfig(discriminator_width=16, fusion_hidden=32, discriminator_blocks="time"),
    TrainConfig(steps=2500, lr=2e-4, betas=(0.5, 0.9), weight_decay=0.0, warmup_steps=0, cosine_decay=False,
                grad_clip=0.0, ema_decay=0.999, ema_warmup=True, ema_module="generator", seed=0),
    batch_size=64, sampling=GANSampling(), generator_lr=2e-4, discriminator_lr=1.6e-4))
