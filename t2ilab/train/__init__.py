"""Training: one model-agnostic loop with EMA, checkpoints, exact resume and DDP; each family supplies a step."""
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import TrainConfig, TrainResult, distributed_context, lr_at, train, unwrap

__all__ = ["TrainConfig", "TrainResult", "distributed_context", "load_checkpoint", "lr_at", "save_checkpoint",
           "train", "unwrap"]
