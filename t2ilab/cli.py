"""The `t2ilab` command line.

    t2ilab data [--seed --grid]                         generate (or load) SynthBirds-200 and describe it
    t2ilab train PRESET [--steps --out --resume --device --release]
    t2ilab evaluate NAME [--n --seed --device --sampler --steps --guidance-scale --write]
                                                        re-measure a released model, update its card
    t2ilab zoo list                                     the released models
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _data(args: argparse.Namespace) -> int:
    from .data import synthbirds

    start = time.perf_counter()
    fresh = not (synthbirds.cache_dir(args.seed, args.root) / "meta.json").exists()
    data = synthbirds.load(args.seed, args.root)
    seconds = time.perf_counter() - start
    print(f"SynthBirds-200 (seed {args.seed}) at {synthbirds.cache_dir(args.seed, args.root)}")
    print(f"  {'generated' if fresh else 'loaded'} in {seconds:.1f} s")
    print(f"  images {len(data.species)} ({int(data.is_train.sum())} train / {int((~data.is_train).sum())} test), "
          f"{data.images.shape[1]}x{data.images.shape[2]} RGB, {len(data.species_table)} species, "
          f"{len(data.captions[0])} captions per image")
    if args.grid:
        from .viz import save_species_grid

        save_species_grid(args.grid, seed=args.seed, root=args.root)
        print(f"  wrote {args.grid}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import shlex

    from . import zoo
    from .nn import count_parameters
    from .presets import get_preset
    from .train import distributed_context, train

    preset = get_preset(args.preset)
    commit = zoo.git_commit()  # the code that trains, recorded before anything changes
    overrides = {"device": args.device}
    if args.steps is not None:
        overrides["steps"] = args.steps
    job = preset.build(**overrides)
    out = args.out or f"runs/{args.preset}"
    rank, world = distributed_context()
    if rank == 0:
        print(f"{preset.name}: {preset.description}\n  {count_parameters(job.model):,} parameters, "
              f"{job.config.steps} steps, batch {preset.batch_size} x {world} process(es), device {args.device}, "
              f"checkpoints in {out}")
    # the commits that ran training steps, kept in the checkpoint across resumes and copied into the card
    commits = _training_commits(Path(out) / "checkpoint.pt", args.resume, job.config.steps, commit)
    result = train(job.model, job.step_fn, job.batch_fn, job.config, out_dir=out, resume=args.resume,
                   extra_state={"commits": commits})
    if rank != 0:
        return 0
    final = result.ema if result.ema is not None else result.model
    print(f"  done: {result.steps} steps, {result.wall_seconds / 60:.1f} min of training, "
          f"final loss {result.history[-1]['loss']:.4f}")
    if args.release:
        final = final.float().eval()
        metrics = preset.evaluate(final.to(args.device), n=args.eval_n)
        command = "t2ilab " + " ".join(shlex.quote(a) for a in (args.argv or []))
        card = {"description": preset.description, "command": command, "commit": commit, "training_commits": commits,
                "wall_seconds": round(result.wall_seconds, 1), "machine": zoo.machine_description(args.device),
                "steps": result.steps, "parameters": count_parameters(final),
                "train_config": _plain(job.config), "batch_size": preset.batch_size, "world_size": world,
                "weights_from": "ema" if result.ema is not None else "model",
                "final_loss": result.history[-1]["loss"], "metrics": metrics, **job.card_extra}
        path = zoo.release(preset.name, final.cpu(), card)
        print(f"  released {path} ({path.stat().st_size / 1e6:.1f} MB)\n  metrics: {_short(metrics)}")
    return 0


def _training_commits(checkpoint: Path, resume: bool, steps: int, commit: str) -> list[str]:
    """Commits recorded by earlier runs of this checkpoint, plus `commit` if this run will train more steps."""
    from .train import load_checkpoint

    if not (resume and checkpoint.exists()):
        return [commit]
    state = load_checkpoint(checkpoint)
    earlier = list(state.get("extra", {}).get("commits", []))
    if state["step"] < steps and commit not in earlier:
        earlier.append(commit)
    return earlier


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from . import zoo
    from .presets import DiffusionPreset, GuidancePreset, get_preset

    card = zoo.load_card(args.name)
    model = zoo.load(args.name, device=args.device)
    options = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps),
                                 ("guidance_scale", args.guidance_scale)) if v is not None}
    preset = get_preset(args.name)
    if options and not isinstance(preset, (DiffusionPreset, GuidancePreset)):
        raise SystemExit(f"--sampler/--steps/--guidance-scale apply to diffusion models and guidance judges, "
                         f"not to {args.name}")
    if "sampler" in options and not isinstance(preset, DiffusionPreset):
        raise SystemExit(f"--sampler applies to diffusion models, not to {args.name}")
    metrics = preset.evaluate(model, n=args.n, seed=args.seed, **options)
    print(json.dumps(metrics, indent=2))
    if args.write:
        from .nn import count_parameters

        if options:  # a variant: kept beside the card's main metrics, under a label naming its settings
            card.setdefault("evaluations", {})[_variant_label(options, metrics)] = metrics
        else:
            card["metrics"] = metrics
        card["parameters"] = count_parameters(model)
        (zoo.weights_dir() / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
        print(f"updated {args.name}.json")
    return 0


def _variant_label(options: dict, metrics: dict) -> str:
    """The card key of an evaluation with non-default settings: "guidance_scale=3.0-n=300"."""
    n = metrics["n"] if "n" in metrics else metrics["guided_n"]  # a judge's card measures the guided generator
    return "-".join(f"{k}={v}" for k, v in sorted(options.items())) + f"-n={n}"


def _zoo(args: argparse.Namespace) -> int:
    from . import zoo

    print(zoo.table())
    return 0


def _plain(config) -> dict:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _short(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2ilab", description="Text-to-image generation, three ways.")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="generate (or load) SynthBirds-200 and print its figures")
    data.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    data.add_argument("--root", default=None, help="cache folder (default $T2ILAB_HOME or ~/.cache/t2ilab)")
    data.add_argument("--grid", default=None, help="also save a PNG grid of 8 species x 8 images here")
    data.set_defaults(func=_data)

    train = sub.add_parser("train", help="train a preset (resumable); --release writes weights and a model card")
    train.add_argument("preset", help="preset name, e.g. clip-birds or evaluator-birds")
    train.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    train.add_argument("--out", default=None, help="checkpoint folder (default runs/PRESET)")
    train.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue from OUT/checkpoint.pt if present (default yes)")
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    train.add_argument("--release", action="store_true", help="evaluate and release into t2ilab/zoo/weights")
    train.add_argument("--eval-n", type=int, default=None, help="N for the release evaluation (default: preset's)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="measure a released model (the metrics of its card)")
    evaluate.add_argument("name")
    evaluate.add_argument("--n", type=int, default=None, help="number of test items (default: all)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--sampler", choices=["ddim", "ddpm"], default=None,
                          help="diffusion models: DDIM (default, the preset's steps) or DDPM (1000 steps)")
    evaluate.add_argument("--steps", type=int, default=None, help="diffusion models: DDIM steps")
    evaluate.add_argument("--guidance-scale", type=float, default=None, help="text diffusion models: CFG scale")
    evaluate.add_argument("--write", action="store_true",
                          help="store the metrics in the model card (runs with --sampler/--steps/--guidance-scale "
                               "go under 'evaluations')")
    evaluate.set_defaults(func=_evaluate)

    zoo = sub.add_parser("zoo", help="the released models")
    zoo.add_argument("action", choices=["list"])
    zoo.set_defaults(func=_zoo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
