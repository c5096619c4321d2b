"""One model-agnostic training loop (chapter "How we measure text-to-image models", and every model chapter).

Nothing here knows about diffusion, transformers or GANs. A family supplies

- `batch_fn(step, rank, world_size) -> batch`: the batch of a step, drawn from a generator seeded by
  (seed, step, rank) so that a resumed run sees exactly the batches an uninterrupted run would;
- `step_fn(model, batch) -> (loss, logs)`: the loss of one batch. Under DDP `model` is the
  `DistributedDataParallel` wrapper: call it (its `forward`), not its submodules, so gradients are averaged;
- or, instead of one step function, several `Phase`s run one after the other on each batch, each with its own
  parameters (a named submodule), optimizer settings, gradient clipping and optimizer state: a GAN's
  discriminator phase, then its generator phase. A phase's loss may touch other parameters; only its own move.

The loop adds what every run needs: AdamW with linear warm-up and cosine decay, gradient clipping, an EMA of the
weights (of the whole model, or of one submodule such as the generator), a tqdm bar with the loss, periodic atomic
checkpoints with the RNG state, exact resume, bfloat16 autocast on a GPU, and data parallelism over processes
started by `torchrun` (gloo on CPU, NCCL on GPU).
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state

StepFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]
BatchFn = Callable[[int, int, int], Any]


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    cosine_decay: bool = True  # to 10% of lr at the last step
    grad_clip: float | None = 1.0
    ema_decay: float | None = None  # e.g. 0.999; None keeps no EMA
    ema_warmup: bool = False  # decay min(ema_decay, (1 + step) / (10 + step)): early steps forget the random init
    ema_module: str | None = None  # keep the EMA of this submodule only (e.g. "generator"); None: the whole model
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    device: str = "cpu"
    mixed_precision: bool = True  # bfloat16 autocast, used on CUDA only


@dataclass
class Phase:
    """One optimisation phase of a training step: its loss, the parameters it updates and its optimizer settings.

    `module` names the submodule whose parameters this phase updates (None: the whole model); `lr`, `betas`,
    `weight_decay` and `grad_clip` default (None) to the TrainConfig's; `grad_clip=0` turns clipping off."""

    name: str
    step_fn: StepFn
    module: str | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None

    def settings(self, cfg: "TrainConfig") -> dict[str, Any]:
        """The phase's optimizer settings with the config's filled in."""
        return {"lr": cfg.lr if self.lr is None else self.lr,
                "betas": tuple(cfg.betas if self.betas is None else self.betas),
                "weight_decay": cfg.weight_decay if self.weight_decay is None else self.weight_decay,
                "grad_clip": cfg.grad_clip if self.grad_clip is None else self.grad_clip}


@dataclass
class TrainResult:
    model: nn.Module
    ema: nn.Module | None  # the EMA of the model, or of `TrainConfig.ema_module`
    history: list[dict[str, float]] = field(default_factory=list)
    wall_seconds: float = 0.0  # summed over all sessions of a resumed run
    steps: int = 0


def lr_at(step: int, cfg: TrainConfig, base_lr: float | None = None) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 10% of `base_lr` (default `cfg.lr`), or constant."""
    lr = cfg.lr if base_lr is None else base_lr
    if step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps
    if not cfg.cosine_decay:
        return lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def ema_decay_at(step: int, cfg: TrainConfig) -> float:
    """The EMA decay used after `step`. Without warm-up a 0.999 EMA still holds 0.999**n of the random
    initialisation after n steps (9% after 2,400), which shows up as noise in diffusion samples; the warm-up
    (1 + n) / (10 + n) makes the early average a plain mean of the recent weights instead."""
    if cfg.ema_decay is None:
        raise ValueError("this configuration keeps no EMA (ema_decay=None)")
    return min(cfg.ema_decay, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema_decay


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def distributed_context() -> tuple[int, int]:
    """(rank, world size); initialises the process group when started by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _submodule(model: nn.Module, name: str | None) -> nn.Module:
    if name is None:
        return model
    try:
        return model.get_submodule(name)
    except AttributeError:
        children = [n for n, _ in model.named_children()]
        raise ValueError(f"the model has no submodule {name!r}; its children are {children}") from None


def train(model: nn.Module, step_fn: "StepFn | list[Phase]", batch_fn: BatchFn, cfg: TrainConfig,
          out_dir: str | os.PathLike | None = None, resume: bool = True, progress: bool = True,
          extra_state: dict[str, Any] | None = None,
          on_checkpoint: Callable[[int, nn.Module, "nn.Module | None", Path], None] | None = None) -> TrainResult:
    """Train `model` for `cfg.steps` steps; with `out_dir`, checkpoint to `out_dir/checkpoint.pt` and resume from it.

    `step_fn` is one step function (one phase over all parameters) or a list of `Phase`s run in order per step.
    `on_checkpoint(step, model, ema, out_dir)` runs after each checkpoint (e.g. a GAN's fixed grid of samples); it
    must not draw from the global random generators, so that a resumed run stays exact."""
    phases = list(step_fn) if isinstance(step_fn, (list, tuple)) else [Phase("train", step_fn)]
    if len({p.name for p in phases}) != len(phases):
        raise ValueError(f"phase names must differ, got {[p.name for p in phases]}")
    rank, world = distributed_context()
    device = torch.device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.manual_seed(cfg.seed)  # the same initial RNG state on every rank; batches differ by rank
    model = model.to(device)
    ema_source = _submodule(model, cfg.ema_module)
    ema = copy.deepcopy(ema_source).requires_grad_(False) if cfg.ema_decay else None
    settings = [p.settings(cfg) for p in phases]
    optimizers = [torch.optim.AdamW(_submodule(model, p.module).parameters(), lr=s["lr"], betas=s["betas"],
                                    weight_decay=s["weight_decay"]) for p, s in zip(phases, settings)]
    history: list[dict[str, float]] = []
    start_step, wall_before = 0, 0.0

    checkpoint_path = Path(out_dir) / "checkpoint.pt" if out_dir else None
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, map_location=device)
        if _must_match(state["config"]) != _must_match(asdict(cfg)):
            differing = config_differences(_must_match(state["config"]), _must_match(asdict(cfg)))
            raise ValueError(f"{checkpoint_path} was written with another configuration ({'; '.join(differing)}); "
                             f"use a new --out or resume=False (--no-resume)")
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        saved = state.get("optimizers") or {"train": state["optimizer"]}  # one-phase checkpoints of earlier versions
        if sorted(saved) != sorted(p.name for p in phases):
            raise ValueError(f"{checkpoint_path} holds the optimizer states of phases {sorted(saved)}, this job has "
                             f"{[p.name for p in phases]}; use a new --out or resume=False")
        for phase, optimizer in zip(phases, optimizers):
            optimizer.load_state_dict(saved[phase.name])
        set_rng_state(state["rng"])
        start_step, history, wall_before = state["step"], state["history"], state["wall_seconds"]

    wrapped = model
    if world > 1:  # several phases each leave some parameters without a gradient
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                      find_unused_parameters=len(phases) > 1)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.mixed_precision and device.type == "cuda")

    def write_checkpoint(step: int) -> None:
        if checkpoint_path is None or rank != 0:
            return
        save_checkpoint(checkpoint_path, {
            "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizers": {p.name: o.state_dict() for p, o in zip(phases, optimizers)}, "step": step,
            "rng": rng_state(), "history": history,
            "wall_seconds": wall_before + time.perf_counter() - started, "config": _jsonable(asdict(cfg)),
            "extra": extra_state or {},
        })
        if on_checkpoint is not None:
            with torch.no_grad():
                on_checkpoint(step, model, ema, checkpoint_path.parent)

    started = time.perf_counter()
    model.train()
    bar = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, disable=not progress or rank != 0,
               desc="training", dynamic_ncols=True)
    for step in bar:
        # 1. the batch of this step (a function of the step, not of the past)
        batch = _to_device(batch_fn(step, rank, world), device)
        record: dict[str, float] = {"step": step}
        for phase, optimizer, setting in zip(phases, optimizers, settings):
            # 2. per phase: learning rate, loss, gradients (averaged across processes by DDP), clipping, update
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg, setting["lr"])
            with autocast:
                loss, logs = phase.step_fn(wrapped, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{phase.name} loss became {loss.item()} at step {step}; "
                                         f"lower the learning rate")
            model.zero_grad(set_to_none=True)  # all of them: an earlier phase's loss may have reached these
            loss.backward()
            params = [p for group in optimizer.param_groups for p in group["params"]]
            grad_norm = (torch.nn.utils.clip_grad_norm_(params, setting["grad_clip"])
                         if setting["grad_clip"] else torch.tensor(0.0))
            optimizer.step()
            prefix = "" if len(phases) == 1 else f"{phase.name}_"
            record |= {f"{prefix}loss": float(loss.detach()), f"{prefix}lr": lr_at(step, cfg, setting["lr"]),
                       f"{prefix}grad_norm": float(grad_norm), **{f"{prefix}{k}": v for k, v in logs.items()}}
        if len(phases) > 1:
            record["loss"] = record[f"{phases[-1].name}_loss"]  # the last phase's (the generator's) stands for the step
        # 3. EMA of the weights, logs, checkpoint
        if ema is not None:
            ema_update(ema, ema_source, ema_decay_at(step, cfg))
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            history.append(record)
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.endswith("loss")})
        if (step + 1) % cfg.checkpoint_every == 0 or step == cfg.steps - 1:
            write_checkpoint(step + 1)
    bar.close()
    wall = wall_before + time.perf_counter() - started
    if checkpoint_path is not None and rank == 0:
        (checkpoint_path.parent / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    return TrainResult(model, ema, history, wall, cfg.steps)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch) if not hasattr(batch, "_fields") else \
            type(batch)(*(_to_device(v, device) for v in batch))
    return batch


def _must_match(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run must share with the saved one (steps may grow, the device may change)."""
    return {k: v for k, v in _jsonable(config).items() if k not in ("steps", "device", "checkpoint_every", "log_every")}


def config_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The fields of two configurations (as dicts) that differ, as "field: saved -> now"."""
    saved, now = _jsonable(saved), _jsonable(now)
    return [f"{k}: {saved.get(k, '(absent)')!r} -> {now.get(k, '(absent)')!r}" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
