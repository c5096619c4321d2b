"""How the text U-Net's CFG attribute accuracy grows with its training budget (chapter "Guiding diffusion with text").

Trains the `diffusion-text-birds32` preset from scratch at several step counts, each with the preset's cosine schedule
(warm-up: the preset's 100 steps or a tenth of the run, whichever is shorter) (so every run is a finished run at its budget, not a snapshot of a longer one), and
measures each EMA model like the card's guidance-scale sweep: N test captions, DDIM 25 steps, CFG scale S.
Nothing here is released; the JSON records the command, commit, machine and wall times.

    python benchmarks/text_diffusion_budget.py --steps 300 600 1200 --n 300 --out text_diffusion_budget.json

The released model (2,400 steps) is measured the same way by
`t2ilab evaluate diffusion-text-birds32 --n 300 --guidance-scale 3`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from t2ilab.metrics import evaluate
from t2ilab.presets import get_preset
from t2ilab.train.loop import train
from t2ilab.zoo import git_commit, machine_description

PRESET = "diffusion-text-birds32"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 600, 1200])
    parser.add_argument("--n", type=int, default=300, help="test captions per evaluation")
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    parser.add_argument("--runs", default="runs/budget", help="checkpoint folders (resumable)")
    parser.add_argument("--out", default="text_diffusion_budget.json")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.steps):
        parser.error("--steps must be positive")

    preset = get_preset(PRESET)
    out = Path(args.out)
    results = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {r["steps"] for r in results}
    for steps in sorted(set(args.steps) - done):
        job = preset.build(steps=steps, warmup_steps=min(preset.train_config.warmup_steps, steps // 10))
        start = time.time()
        result = train(job.model, job.step_fn, job.batch_fn, job.config, out_dir=f"{args.runs}/{steps}",
                       resume=True, progress=True)
        metrics = evaluate(preset.model_fn(result.ema.eval(), "cpu", args.guidance_scale), n=args.n, seed=0).to_dict()
        results.append({"steps": steps, "train_wall_seconds": result.wall_seconds,
                        "eval_wall_seconds": time.time() - start - result.wall_seconds,
                        "attribute_accuracy": metrics["attribute_accuracy"], "fid_sb": metrics["fid_sb"],
                        "recall": metrics["recall"], "r_precision": metrics["r_precision"],
                        "attribute_accuracy_per_group": metrics["attribute_accuracy_per_group"]})
        results.sort(key=lambda r: r["steps"])
        record = {"preset": PRESET, "n": args.n, "seed": 0, "guidance_scale": args.guidance_scale,
                  "sampler": f"DDIM {preset.sample_steps} steps, eta 0", "command": "python " + " ".join(sys.argv),
                  "commit": git_commit(), "machine": machine_description("cpu"),
                  "runs": results}
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"{steps} steps: attribute accuracy {metrics['attribute_accuracy']:.3f}, FID-SB {metrics['fid_sb']:.1f}")

    if len(results) >= 2:  # least-squares line of accuracy against log2(steps): points gained per doubling
        xs = [math.log2(r["steps"]) for r in results]
        ys = [r["attribute_accuracy"] for r in results]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        print(f"{100 * slope:.1f} accuracy points per doubling of training steps")


if __name__ == "__main__":
    main()
