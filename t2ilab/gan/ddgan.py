"""A GAN that takes a few large denoising steps: the denoising diffusion GAN (chapter "The generative trilemma").

After Xiao, Kreis & Vahdat (2022), "Tackling the Generative Learning Trilemma with Denoising Diffusion GANs"
(NVlabs/denoising-diffusion-gan), made text-conditional the way the rest of the GAN family is:

- The forward process has only T = 4 steps (the paper's CIFAR-10 setting), so each reverse step is far from
  Gaussian. Instead of a Gaussian, a conditional generator models it implicitly: G(x_t, z, t, s) predicts x_0, and
  x_{t-1} is drawn from the diffusion package's own posterior q(x_{t-1} | x_t, x_0) (`q_posterior`).
- A time- and text-conditional discriminator D(x_{t-1}, x_t, t, s) tells real pairs (x_{t-1} ~ q(x_{t-1} | x_0),
  x_t ~ q(x_t | x_{t-1})) from generated ones, with the non-saturating loss and R1 on the real x_{t-1}.
- The schedule is the paper's discretised VP-SDE (beta_min = 0.1, beta_max = 20) on T + 1 times t_i = i/T, moved
  into [1e-3, 1]; T = 1 makes the model an ordinary one-step conditional GAN.

The generator reuses DF-GAN's parts: it encodes x_t with down blocks and decodes with up blocks whose affine fusion
layers are driven by one condition vector (time embedding, noise z and sentence embedding together), with skip
connections from the encoder. The discriminator follows the paper's: residual down blocks with the time embedding
added inside each, a minibatch standard-deviation channel, then joined with the sentence and time embeddings at
4x4 (DF-GAN's down blocks, as in the first 45-minute run, remain an option).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion.process import extract, q_posterior
from ..diffusion.schedules import Schedule, make_schedule
from ..nn import timestep_embedding
from ..registry import register_model
from .dfgan import DownBlock, FusionBlock


@dataclass
class DDGANConfig:
    image_size: int = 32
    num_timesteps: int = 4  # T
    beta_min: float = 0.1
    beta_max: float = 20.0
    z_dim: int = 64
    sentence_dim: int = 256  # mini-CLIP's embed_dim
    time_dim: int = 64
    generator_width: int = 32  # channels at the image size, x2 per halving down to 8x8
    discriminator_width: int = 32
    fusion_hidden: int = 128
    # "time": the paper's blocks (time embedding added inside every block, minibatch standard deviation before the
    # score); "dfgan": DF-GAN's down blocks with the time joined only at 4x4 (the first 45-minute run's)
    discriminator_blocks: str = "time"

    def __post_init__(self):
        if self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be at least 1, got {self.num_timesteps}")
        if self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {self.image_size}")
        if self.discriminator_blocks not in ("time", "dfgan"):
            raise ValueError(f"discriminator_blocks must be 'time' or 'dfgan', got {self.discriminator_blocks!r}")

    @property
    def condition_dim(self) -> int:
        return self.time_dim + self.z_dim + self.sentence_dim


def vp_alpha_bar(t: torch.Tensor, beta_min: float, beta_max: float) -> torch.Tensor:
    """alpha_bar(t) = exp(-int_0^t beta(u) du) for the VP-SDE's beta(u) = beta_min + u (beta_max - beta_min)."""
    return torch.exp(-beta_min * t - 0.5 * (beta_max - beta_min) * t ** 2)


def ddgan_schedule(num_timesteps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0,
                   eps: float = 1e-3) -> Schedule:
    """The T-step schedule: betas from alpha_bar at t_i = eps + (1 - eps) i / T, i = 0..T, as one `Schedule`
    (index 0 is the first noising step, so alphas_cumprod[k] = alpha_bar(t_{k+1}) / alpha_bar(t_0))."""
    t = eps + (1 - eps) * torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    alpha_bar = vp_alpha_bar(t, beta_min, beta_max)
    return make_schedule(1 - alpha_bar[1:] / alpha_bar[:-1])


@register_model
class DDGenerator(nn.Module):
    """G(x_t, z, t, s) -> predicted x_0 in [-1, 1]: (B, 3, S, S), (B, z_dim), (B,), (B, sentence_dim)."""

    config_class = DDGANConfig

    def __init__(self, cfg: DDGANConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.generator_width
        widths = [w, 2 * w, 4 * w]  # at S, S/2, S/4
        c, h = cfg.condition_dim, cfg.fusion_hidden
        self.time = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.SiLU(), nn.Linear(cfg.time_dim, cfg.time_dim))
        self.stem = nn.Conv2d(3, w, 3, padding=1)
        self.down = nn.ModuleList(DownBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.middle = nn.ModuleList([FusionBlock(widths[-1], c, h), FusionBlock(widths[-1], c, h)])
        self.middle_conv = nn.ModuleList(nn.Conv2d(widths[-1], widths[-1], 3, padding=1) for _ in range(2))
        pairs = list(zip(reversed(widths[1:]), reversed(widths[:-1])))  # (from below, skip) at S/2 then S
        self.up_fuse = nn.ModuleList(FusionBlock(a + b, c, h) for a, b in pairs)
        self.up_conv = nn.ModuleList(nn.Conv2d(a + b, b, 3, padding=1) for a, b in pairs)
        self.out_fuse = FusionBlock(w, c, h)
        self.to_rgb = nn.Conv2d(w, 3, 3, padding=1)

    def condition(self, z: torch.Tensor, t: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t, self.cfg.time_dim))
        return torch.cat([temb, z, sentence], 1)

    def forward(self, x_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        c = self.condition(z, t, sentence)
        h = self.stem(x_t)
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()  # the bottom is h itself
        for fuse, conv in zip(self.middle, self.middle_conv):
            h = h + conv(fuse(h, c))
        for fuse, conv in zip(self.up_fuse, self.up_conv):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = torch.cat([h, skips.pop()], 1)
            h = conv(fuse(h, c))
        return torch.tanh(self.to_rgb(self.out_fuse(h, c)))


class TimeDownBlock(nn.Module):
    """The paper's discriminator block: LeakyReLU, 3x3 convolution, plus a projection of the time embedding, LeakyReLU,
    3x3 convolution, 2x average pooling; added to a pooled 1x1 shortcut and scaled by 1/sqrt(2). Nonlinear from the
    first step (DF-GAN's block starts as its linear shortcut), and told the step inside every block."""

    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, 0.2)) + self.time(temb)[:, :, None, None]
        h = F.avg_pool2d(self.conv2(F.leaky_relu(h, 0.2)), 2)
        return (h + F.avg_pool2d(self.shortcut(x), 2)) / math.sqrt(2)


def minibatch_stddev(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 1, H, W): one more channel holding the standard deviation of the features across a
    group of samples, averaged over features and positions (Karras et al., 2018). A generator whose outputs vary
    less than the data's, within a batch, is visible to a discriminator that reads it. Sample i is in group i mod
    (B / G), G the largest divisor of B up to `group`."""
    b, c, height, width = h.shape
    g = next(k for k in range(min(group, b), 0, -1) if b % k == 0)
    y = h.view(g, b // g, c, height, width)
    y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean([1, 2, 3])  # (B / G,)
    return torch.cat([h, y.repeat(g)[:, None, None, None].expand(-1, 1, height, width)], 1)


class DDDiscriminator(nn.Module):
    """D(x_{t-1}, x_t, t, s) -> (B,) scores: is x_{t-1} a real denoising step of x_t for this caption?"""

    def __init__(self, cfg: DDGANConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.discriminator_width
        widths = [w * min(8, 2 ** i) for i in range((cfg.image_size // 4).bit_length())]  # S down to 4x4
        self.stem = nn.Conv2d(6, widths[0], 3, padding=1)
        pairs = list(zip(widths[:-1], widths[1:]))
        self.paper_blocks = cfg.discriminator_blocks == "time"
        self.blocks = nn.ModuleList(TimeDownBlock(a, b, cfg.time_dim) if self.paper_blocks else DownBlock(a, b)
                                    for a, b in pairs)
        self.time = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.SiLU())
        c = widths[-1] + self.paper_blocks  # + the minibatch standard deviation channel
        self.joint = nn.Sequential(nn.Conv2d(c + cfg.sentence_dim + cfg.time_dim, widths[-1], 3, padding=1),
                                   nn.LeakyReLU(0.2), nn.Conv2d(widths[-1], 1, cfg.image_size >> (len(widths) - 1)))

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                sentence: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t, self.cfg.time_dim))
        h = self.stem(torch.cat([x_prev, x_t], 1))
        for block in self.blocks:
            h = block(h, temb) if self.paper_blocks else block(h)
        if self.paper_blocks:
            h = minibatch_stddev(F.leaky_relu(h, 0.2))
        cond = torch.cat([sentence, temb], 1)[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return self.joint(torch.cat([h, cond], 1)).flatten()


class DDGAN(nn.Module):
    """Both players, for training; the generator is what is released."""

    def __init__(self, cfg: DDGANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = DDGenerator(cfg)
        self.discriminator = DDDiscriminator(cfg)


def q_pair(x_start: torch.Tensor, t: torch.Tensor, schedule: Schedule,
           g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A real training pair at step t (schedule index): x_prev ~ q(x_{t-1} | x_0) (x_0 itself at t = 0), then
    x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_prev, beta_t I)."""
    noise_prev = torch.randn(x_start.shape, generator=g).to(x_start)
    noise_step = torch.randn(x_start.shape, generator=g).to(x_start)
    ab_prev = extract(schedule.alphas_cumprod_prev, t, x_start)
    x_prev = ab_prev.sqrt() * x_start + (1 - ab_prev).sqrt() * noise_prev
    beta = extract(schedule.betas, t, x_start)
    return x_prev, (1 - beta).sqrt() * x_prev + beta.sqrt() * noise_step


def posterior_sample(x0_pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: Schedule,
                     g: torch.Generator | None = None) -> torch.Tensor:
    """x_{t-1} ~ q(x_{t-1} | x_t, x_0 = G's prediction); the mean itself at t = 0 (where the variance is 0)."""
    post = q_posterior(x0_pred, x_t, t, schedule)
    noise = torch.randn(x_t.shape, generator=g).to(x_t)
    nonzero = (t > 0).to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
    return post.mean + nonzero * (0.5 * post.log_variance).exp() * noise


@torch.no_grad()
def ddgan_sample(generator: DDGenerator, sentence: torch.Tensor, z_scale: float = 1.0,
                 g: torch.Generator | None = None) -> torch.Tensor:
    """The reverse chain: x_T ~ N(0, I), then T steps of x_{t-1} ~ q(x_{t-1} | x_t, G(x_t, z, t, s)), a fresh z each
    step (scaled by `z_scale`, the truncation); T generator evaluations per image."""
    cfg = generator.cfg
    schedule = ddgan_schedule(cfg.num_timesteps, cfg.beta_min, cfg.beta_max)
    device, n = sentence.device, len(sentence)
    x = torch.randn(n, 3, cfg.image_size, cfg.image_size, generator=g).to(device)
    for step in reversed(range(cfg.num_timesteps)):
        t = torch.full((n,), step, device=device, dtype=torch.long)
        z = (torch.randn(n, cfg.z_dim, generator=g) * z_scale).to(device)
        x = posterior_sample(generator(x, z, t, sentence), x, t, schedule, g)
    return x.clamp(-1, 1)
