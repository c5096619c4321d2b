"""The text-conditional diffusion presets (pixel and latent) trained on one GPU for many times their CPU budget,
each released into a scratch zoo with its card and measured at N=2000 (chapters "Diffusion in a latent space" and
"Comparing the families"). Run through `benchmarks/gpu_budget.sh OUT` whenever a GPU is at hand:

    T2ILAB_COMMIT=$(git rev-parse HEAD) bash benchmarks/gpu_budget.sh /tmp/gpu

The run is time-boxed (--minutes, default 7): a 60-step probe measures each preset's seconds per step on this
device, and its run takes the largest number of steps (in hundreds) that fits its share of the time, at most
--multiplier times the CPU preset's steps. Everything else is the preset's recipe, unchanged (batch, learning rate
and its schedule stretched over the longer run, EMA). OUT receives each card (`NAME.gpu.json`) and the budget points
(`gpu_budget.json`: steps, examples seen, wall time, device, the protocol's scores). The models released in the
package stay the CPU ones: these cards put a second, larger-budget point on the budget curves.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

PRESETS_ON_GPU = ("ldm-text-birds32", "diffusion-text-birds32")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for the cards and gpu_budget.json")
    parser.add_argument("--minutes", type=float, default=7.0, help="wall-clock box for the whole run")
    parser.add_argument("--multiplier", type=int, default=16, help="at most this many times the CPU steps")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS_ON_GPU))
    args = parser.parse_args(argv)
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from t2ilab import cli, zoo
    from t2ilab.data import synthbirds
    from t2ilab.recipes import get_preset
    from t2ilab.train import train

    scratch = Path(tempfile.mkdtemp(prefix="t2ilab-gpu-zoo-"))
    for f in zoo.weights_dir().iterdir():  # the released models the presets read (clip, evaluator, tokenizer)
        if f.name.endswith((".json", ".safetensors", ".safetensors.xz")):
            shutil.copy2(f, scratch / f.name)
    os.environ["T2ILAB_ZOO"] = str(scratch)
    synthbirds.load(0)  # generate the data once, outside the time of any run
    points = []
    for i, name in enumerate(args.presets):
        recipe = get_preset(name)
        left = args.minutes * 60 - (time.time() - start)
        # each remaining preset gets an equal share; 35% of a share is kept for building, evaluation and release
        share = 0.65 * left / (len(args.presets) - i)
        probe = recipe.build_job(steps=60, device=args.device, warmup_steps=10)
        seconds = train(probe.model, probe.phases, probe.batch_fn, probe.config,
                        out_dir=Path(tempfile.mkdtemp()), resume=False).wall_seconds / 60
        steps = max(100, min(args.multiplier * recipe.train_config.steps, int(share / seconds) // 100 * 100))
        print(f"{name}: {seconds * 1000:.0f} ms per step on {args.device}: {steps} steps "
              f"({steps / recipe.train_config.steps:.1f}x the CPU preset's {recipe.train_config.steps})", flush=True)
        cli.main(["train", name, "--device", args.device, "--steps", str(steps), "--out", f"runs/gpu/{name}",
                  "--no-resume", "--release", "--replace", "--eval-n", str(args.n)])
        card = json.loads((scratch / f"{name}.json").read_text())
        (out / f"{name}.gpu.json").write_text(json.dumps(card, indent=2) + "\n")
        metrics = card["metrics"]
        points.append({"preset": name, "family": card["family"], "steps": card["steps"],
                       "batch_size": card["batch_size"], "examples": card["steps"] * card["batch_size"],
                       "cpu_preset_steps": recipe.train_config.steps, "train_wall_seconds": card["wall_seconds"],
                       "seconds_per_step": seconds, "machine": card["machine"], "commit": card["commit"],
                       "n": metrics["n"], "sampling": metrics["sampling"],
                       **{k: metrics[k] for k in ("attribute_accuracy", "fid_sb", "recall", "coverage",
                                                  "r_precision", "attribute_accuracy_per_group")}})
        record = {"command": "python " + " ".join(sys.argv), "minutes": args.minutes, "points": points}
        (out / "gpu_budget.json").write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    print(f"done in {(time.time() - start) / 60:.1f} min; wrote {out}")


if __name__ == "__main__":
    main()
