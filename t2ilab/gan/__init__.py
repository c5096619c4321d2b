"""GAN text-to-image (chapters "Growing birds in stages" and "One generator, deep fusion").

`losses.py` holds the adversarial losses and penalties (hinge and non-saturating, matching-aware terms, MA-GP,
R1) and DiffAugment; `ddgan.py` the denoising diffusion GAN (few large denoising steps, each a conditional GAN); `dfgan.py` the single-stage generator with deep fusion (strategy 2) and truncated noise; `stackgan.py` the
tree of generators with conditioning augmentation (strategy 1); `training.py` one training step of each, as the
losses of the discriminator and generator phases (the recipes and the trilemma chapter call them).
"""
from .ddgan import (DDGAN, DDDiscriminator, DDGANConfig, DDGenerator, ddgan_sample, ddgan_schedule, minibatch_stddev,
                    posterior_sample, q_pair, vp_alpha_bar)
from .conditioning import sentence_features
from .dfgan import DFGAN, DFDiscriminator, DFGANConfig, DFGenerator, truncated_noise
from .stackgan import (ConditioningAugmentation, StackGAN, StackGANConfig, StackGenerator, downsample_to,
                       kl_to_standard_normal)
from .losses import (diff_augment, hinge_discriminator, hinge_generator, matching_aware_gradient_penalty,
                     nonsaturating_discriminator, nonsaturating_generator, r1_penalty)

__all__ = ["DDGAN", "DDDiscriminator", "DDGANConfig", "DDGenerator", "ddgan_sample", "ddgan_schedule",
           "minibatch_stddev", "posterior_sample", "q_pair", "vp_alpha_bar", "ConditioningAugmentation", "StackGAN", "StackGANConfig", "StackGenerator", "downsample_to",
           "kl_to_standard_normal", "DFDiscriminator", "DFGAN", "DFGANConfig", "DFGenerator", "diff_augment", "hinge_discriminator",
           "hinge_generator", "matching_aware_gradient_penalty", "nonsaturating_discriminator",
           "nonsaturating_generator", "r1_penalty", "sentence_features", "truncated_noise"]
