"""Training: one model-agnostic loop with EMA, checkpoints, exact resume and DDP; each family supplies a step
function, or several phases (a GAN's discriminator and generator)."""
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import Phase, TrainConfig, TrainResult, distributed_context, lr_at, train

__all__ = ["Phase", "TrainConfig", "TrainResult", "distributed_context", "load_checkpoint", "lr_at", "save_checkpoint",
           "train"]
