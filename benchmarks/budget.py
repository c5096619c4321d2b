"""What more training buys: a generator preset retrained from scratch at several budgets, each run measured by
the shared protocol (chapters "Guiding diffusion with text" and "Comparing the families").

Each budget is a finished run with the preset's full learning-rate schedule (warm-up is the preset's, or a tenth
of the run when that is shorter), not a snapshot of a longer one. Each final model (its EMA where the preset keeps
one) is measured on N test captions with the preset's sampling options, or those given with --set. Nothing here is
released; the JSON record holds the command, commit, machine, model config and wall times, and is rewritten after
every run, so an interrupted benchmark resumes (checkpoints in --runs) and loses at most one evaluation.

    python benchmarks/budget.py diffusion-text-birds32 --steps 300 600 1200 --n 300 --set guidance_scale=3

`--vary NAME=VALUE` measures one lever at a time: the same curve with a recipe or model setting changed (DF-GAN
with DiffAugment: `--vary diffaugment=true --steps 1200`), recorded in its own file (`budget_PRESET-NAME=VALUE.json`)
and never joined with the released model.

The released model was trained by the same recipe at the preset's full budget; where its card holds the same
measurement (`t2ilab evaluate NAME --n N --set ... --write`) with the same model config, that row joins the table
and the fit instead of being retrained. The fit is accuracy = a * log2(steps) + b: a is the gain per doubling.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from t2ilab.release import variant_label
from t2ilab.compare import judge_versions, log_fit
from t2ilab.data.synthbirds import TEST_IMAGES
from t2ilab.metrics.protocol import MIN_N
from t2ilab.recipes import PRESETS, generators
from t2ilab.train import train
from t2ilab.zoo import available, git_commit, load_card, machine_description


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=[name for name in generators() if PRESETS[name].role == "generator"])
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 600, 1200])
    parser.add_argument("--n", type=int, default=300, help="test captions per evaluation")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a sampling option")
    parser.add_argument("--vary", action="append", default=[], metavar="NAME=VALUE",
                        help="a recipe or model setting changed from the preset's (one lever at a time)")
    parser.add_argument("--runs", default=None, help="checkpoint folders (resumable; default runs/budget/PRESET)")
    parser.add_argument("--out", help="default: benchmarks/results/budget_PRESET.json")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.steps):
        parser.error("--steps must be positive")
    if not MIN_N <= args.n <= TEST_IMAGES:
        parser.error(f"--n must be between {MIN_N} and {TEST_IMAGES} (the test split), got {args.n}")
    given, varied = _pairs(parser, "--set", args.set), _pairs(parser, "--vary", args.vary)
    try:
        recipe = PRESETS[args.preset].variant(varied)
        options = recipe.options(given)
    except ValueError as err:
        parser.error(str(err))
    suffix = "".join(f"-{k}={v}" for k, v in sorted(varied.items()))

    config = _plain(recipe.model_config)
    out = Path(args.out or f"benchmarks/results/budget_{args.preset}{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    if out.exists():
        record = json.loads(out.read_text())
        if record.get("model_config") != config or record.get("sampling") != dataclasses.asdict(options) \
                or record.get("n") != args.n or record.get("varied", {}) != _settings(recipe, varied):
            parser.error(f"{out} was made with another model config, setting, sampling options or N: "
                         "pass another --out")
        results = record["runs"]
    runs = Path(args.runs or f"runs/budget/{args.preset}{suffix}")
    for steps in sorted(set(args.steps) - {r["steps"] for r in results}):
        job = recipe.build_job(steps=steps, warmup_steps=min(recipe.train_config.warmup_steps, steps // 10))
        start = time.time()
        result = train(job.model, job.phases, job.batch_fn, job.config, out_dir=runs / str(steps), resume=True)
        final = (result.ema if result.ema is not None else result.model).eval()
        metrics = recipe.evaluate(final, n=args.n, seed=0, options=options)
        results.append({"steps": steps, "train_wall_seconds": result.wall_seconds,
                        "eval_wall_seconds": time.time() - start - result.wall_seconds, "commit": git_commit(),
                        "judges": judge_versions(), **_scores(metrics)})
        results.sort(key=lambda r: r["steps"])
        _write(out, args, recipe, options, given, varied, config, results)
        print(f"{steps} steps: attribute accuracy {metrics['attribute_accuracy']:.3f}, FID-SB {metrics['fid_sb']:.1f}")
    _write(out, args, recipe, options, given, varied, config, results)


def _pairs(parser, flag: str, items: list[str]) -> dict[str, str]:
    if any("=" not in item for item in items):
        parser.error(f"{flag} takes NAME=VALUE")
    return dict(item.split("=", 1) for item in items)


def _settings(recipe, varied: dict) -> dict:
    """The varied settings as the recipe holds them (typed), for the record."""
    return {name: getattr(recipe, name, getattr(recipe.model_config, name, None)) for name in sorted(varied)}


def _plain(value):
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


def _scores(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("attribute_accuracy", "fid_sb", "recall", "coverage", "r_precision",
                                          "attribute_accuracy_per_group")}


def released_row(name: str, label: str, config: dict) -> dict | None:
    """The released model's row, from the evaluation its card holds under `label` (None if it has none, or if it
    was trained with another model config than the runs here)."""
    if name not in available():
        return None
    card = load_card(name)
    metrics = card.get("evaluations", {}).get(label)  # "t2ilab evaluate NAME --n N [--set ...] --write"
    if metrics is None and label.startswith("n="):
        metrics = card.get("metrics")  # the card's main metrics, if they were measured at this N
    if metrics is None or metrics.get("n") != int(label.rsplit("n=", 1)[1]) or \
            {k: v for k, v in card["config"].items() if k in config} != config:
        return None
    return {"steps": card["steps"], "train_wall_seconds": card["wall_seconds"],
            "source": "released model card, commit " + card["commit"], "judges": metrics.get("judges"),
            **_scores(metrics)}


def _write(out: Path, args, recipe, options, given: dict, varied: dict, config: dict, results: list[dict]) -> None:
    label = variant_label(given, options, {"n": args.n})
    released = None if varied else released_row(recipe.name, label, config)
    trained = {r["steps"] for r in results}
    rows = sorted(results + ([released] if released and released["steps"] not in trained else []),
                  key=lambda r: r["steps"])
    record = {"preset": recipe.name, "family": recipe.family, "model_config": config, "n": args.n, "seed": 0,
              "sampling": dataclasses.asdict(options), "varied": _settings(recipe, varied),
              "command": "python " + " ".join(sys.argv), "commit": git_commit(), "machine": machine_description("cpu"),
              "runs": results, "released": released}
    for r in rows:
        print(f"{r['steps']:>6} steps  accuracy {r['attribute_accuracy']:.3f}  FID-SB {r['fid_sb']:6.1f}  "
              f"({r.get('source', 'trained here')})")
    if len({r["steps"] for r in rows}) >= 2:
        a, b = log_fit([r["steps"] for r in rows], [r["attribute_accuracy"] for r in rows])
        record["fit"] = {"points_per_doubling": 100 * a, "intercept": b}
        print(f"{100 * a:.1f} accuracy points per doubling of training steps")
    out.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
