"""How the text U-Net's CFG attribute accuracy grows with its training budget (chapter "Guiding diffusion with text").

Trains the `diffusion-text-birds32` preset from scratch at several step counts, each with the preset's full
learning-rate schedule (so every run is a finished run at its budget, not a snapshot of a longer one; warm-up is the
preset's 100 steps or a tenth of the run, whichever is shorter), and measures each EMA model like the card's
guidance-scale sweep: N test captions, DDIM 25 steps, CFG scale S.
Nothing here is released; the JSON records the command, commit, machine and wall times.

    python benchmarks/text_diffusion_budget.py --steps 300 600 1200 --n 300

`benchmarks/results/text_diffusion_budget_linear.json` was made while the preset used the linear schedule.

The released model is trained by the same recipe at the preset's full budget; where its card holds the same
measurement (`t2ilab evaluate diffusion-text-birds32 --n 300 --guidance-scale 3 --write`), that row joins the
table and the fit instead of being retrained.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from t2ilab.metrics import evaluate
from t2ilab.presets import get_preset
from t2ilab.train.loop import train
from t2ilab.zoo import git_commit, load_card, machine_description

PRESET = "diffusion-text-birds32"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 600, 1200])
    parser.add_argument("--n", type=int, default=300, help="test captions per evaluation")
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    parser.add_argument("--runs", default="runs/budget", help="checkpoint folders (resumable)")
    parser.add_argument("--out", help="default: benchmarks/results/text_diffusion_budget_SCHEDULE.json")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.steps):
        parser.error("--steps must be positive")

    preset = get_preset(PRESET)
    schedule = preset.model_config.schedule
    out = Path(args.out or f"benchmarks/results/text_diffusion_budget_{schedule}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    if out.exists():
        record = json.loads(out.read_text())
        if record.get("schedule") != schedule:
            parser.error(f"{out} was made with the {record.get('schedule')!r} schedule, the preset now uses "
                         f"{schedule!r}: pass another --out")
        results = record["runs"]
    for steps in sorted(set(args.steps) - {r["steps"] for r in results}):
        job = preset.build(steps=steps, warmup_steps=min(preset.train_config.warmup_steps, steps // 10))
        start = time.time()
        result = train(job.model, job.step_fn, job.batch_fn, job.config, out_dir=f"{args.runs}/{steps}",
                       resume=True, progress=True)
        metrics = evaluate(preset.model_fn(result.ema.eval(), "cpu", args.guidance_scale), n=args.n, seed=0).to_dict()
        results.append({"steps": steps, "train_wall_seconds": result.wall_seconds,
                        "eval_wall_seconds": time.time() - start - result.wall_seconds, "commit": git_commit(),
                        **_scores(metrics)})
        results.sort(key=lambda r: r["steps"])
        _write(out, args, preset, results)  # after every run, so an interruption loses at most one
        print(f"{steps} steps: attribute accuracy {metrics['attribute_accuracy']:.3f}, FID-SB {metrics['fid_sb']:.1f}")
    _write(out, args, preset, results)


def _scores(metrics: dict) -> dict:
    return {key: metrics[key] for key in ("attribute_accuracy", "fid_sb", "recall", "r_precision",
                                          "attribute_accuracy_per_group")}


def released_row(n: int, guidance_scale: float, schedule: str) -> dict | None:
    """The released model's row, from the evaluation its card holds at this N and scale (None if it has none, or
    if it was trained with another noise schedule than the runs here)."""
    card = load_card(PRESET)
    metrics = card.get("evaluations", {}).get(f"guidance_scale={guidance_scale}-n={n}")
    if metrics is None or card["config"]["schedule"] != schedule:
        return None
    return {"steps": card["steps"], "train_wall_seconds": card["wall_seconds"],
            "source": "released model card, commit " + card["commit"], **_scores(metrics)}


def log_fit(rows: list[dict]) -> tuple[float, float]:
    """Least-squares line accuracy = a * log2(steps) + b: (a, b); a is the gain per doubling of the budget."""
    line = statistics.linear_regression([math.log2(r["steps"]) for r in rows], [r["attribute_accuracy"] for r in rows])
    return line.slope, line.intercept


def _write(out: Path, args, preset, results: list[dict]) -> None:
    schedule = preset.model_config.schedule
    released = released_row(args.n, args.guidance_scale, schedule)
    trained = {r["steps"] for r in results}
    rows = sorted(results + ([released] if released and released["steps"] not in trained else []),
                  key=lambda r: r["steps"])
    record = {"preset": PRESET, "schedule": schedule, "n": args.n, "seed": 0, "guidance_scale": args.guidance_scale,
              "sampler": f"DDIM {preset.sample_steps} steps, eta 0", "command": "python " + " ".join(sys.argv),
              "commit": git_commit(), "machine": machine_description("cpu"), "runs": results, "released": released}
    for r in rows:
        print(f"{r['steps']:>6} steps  accuracy {r['attribute_accuracy']:.3f}  FID-SB {r['fid_sb']:6.1f}  "
              f"({r.get('source', 'trained here')})")
    if len({r["steps"] for r in rows}) >= 2:
        a, b = log_fit(rows)
        # an extrapolation of the fitted line, not a measurement: how many steps it says 85% would take
        record["fit"] = {"points_per_doubling": 100 * a, "intercept": b,
                         "steps_where_line_reaches_0.85": 2 ** ((0.85 - b) / a) if a > 0 else None}
        print(f"{100 * a:.1f} accuracy points per doubling of training steps")
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
