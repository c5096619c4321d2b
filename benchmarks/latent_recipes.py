"""Which recipe changes buy alignment per unit of compute: variants of the latent diffusion preset trained from
scratch on the same number of training examples, each measured by the shared protocol (chapter "Diffusion in a
latent space").

    python benchmarks/latent_recipes.py --n 300                      # every variant, the preset's full budget
    python benchmarks/latent_recipes.py --n 300 --device cuda --minutes 4

A variant changes one switch of the preset: the latent map (how many principal components of the tokenizer's
latents, one scale or one per coordinate), min-SNR-gamma weighting off, a larger batch with fewer steps or the
reverse, the condition-dropout share. Every variant sees the same number of training examples (steps x batch =
--fraction of the preset's), which on a CPU is the same compute: a step's cost grows in proportion to its batch
(`--time-cpu` measures it and stores seconds per step per batch size in the record). On a GPU, --minutes boxes the
whole run: a probe of the preset's step time scales --fraction down (the same for every variant) when the full
budget would not fit. The record (default benchmarks/results/latent_recipes.json) is rewritten after every variant;
a rerun with the same N and fraction skips the variants it holds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {  # the first was the preset when they were measured; the preset has since dropped min-SNR weighting
    "preset (8 whitened components, min-SNR 5, batch 128, dropout 0.15)": {"min_snr_gamma": 5.0},
    "8 components, one shared scale (LDM's scale factor)": {"whiten": False, "min_snr_gamma": 5.0},
    "all 64 channels, whitened": {"components": 64, "min_snr_gamma": 5.0},
    "plain v-loss (no min-SNR weighting)": {},
    "batch 256, half the steps": {"batch_size": 256, "min_snr_gamma": 5.0},
    "batch 64, twice the steps": {"batch_size": 64, "min_snr_gamma": 5.0},
    "condition dropout 0.05": {"condition_dropout": 0.05, "min_snr_gamma": 5.0},
    "condition dropout 0.30": {"condition_dropout": 0.30, "min_snr_gamma": 5.0},
}
SCORES = ("attribute_accuracy", "fid_sb", "recall", "coverage", "r_precision", "attribute_accuracy_per_group")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ldm-text-birds32")
    parser.add_argument("--n", type=int, default=300, help="test captions per evaluation")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the preset's training examples")
    parser.add_argument("--minutes", type=float, default=None, help="time box: scale --fraction down to fit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--time-cpu", action="store_true", help="only time 8 steps per batch size on this CPU")
    parser.add_argument("--runs", default="runs/latent_recipes")
    parser.add_argument("--out", default="benchmarks/results/latent_recipes.json")
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")

    from t2ilab.recipes import get_preset
    from t2ilab.train import train
    from t2ilab.zoo import git_commit, machine_description

    base = get_preset(args.preset)
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.exists() else {}
    if args.time_cpu:
        timing = {}
        for batch in sorted({VARIANTS[v].get("batch_size", base.batch_size) for v in VARIANTS}):
            job = dataclasses.replace(base, batch_size=batch).build_job(steps=8, warmup_steps=1)
            result = train(job.model, job.phases, job.batch_fn, job.config, out_dir=Path(tempfile.mkdtemp()),
                           resume=False)
            timing[str(batch)] = result.wall_seconds / 8
            print(f"batch {batch}: {timing[str(batch)]:.2f} s per step on this CPU", flush=True)
        record["cpu_seconds_per_step"] = {"batch": timing, "machine": machine_description("cpu"),
                                          "commit": git_commit()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        return

    start = time.time()
    examples = base.train_config.steps * base.batch_size
    fraction = args.fraction
    if args.minutes is not None:  # probe the preset's step time here, then fit the variants into the box
        job = base.build_job(steps=30, device=args.device, warmup_steps=3)
        per_example = train(job.model, job.phases, job.batch_fn, job.config, out_dir=Path(tempfile.mkdtemp()),
                            resume=False).wall_seconds / (30 * base.batch_size)
        eval_share = 0.25  # of the box, for building the jobs and the evaluations
        need = len(args.variants) * examples * per_example
        fraction = min(fraction, (1 - eval_share) * (args.minutes * 60 - (time.time() - start)) / need)
        fraction = max(1 / 64, int(fraction * 64) / 64)  # in 64ths, so that reruns can match
        print(f"{per_example * base.batch_size * 1000:.0f} ms per step of batch {base.batch_size}: "
              f"fraction {fraction:.4f} of the preset's {examples:,} examples per variant", flush=True)
    if record.get("n") != args.n or record.get("fraction") != fraction or record.get("preset") != base.name:
        record = {"cpu_seconds_per_step": record.get("cpu_seconds_per_step")} if record else {}
    record |= {"preset": base.name, "n": args.n, "fraction": fraction, "examples_per_variant": round(fraction * examples),
               "command": "python " + " ".join(sys.argv), "device": args.device}
    runs = record.setdefault("runs", {})
    for label in args.variants:
        if label in runs:
            continue
        recipe = dataclasses.replace(base, **VARIANTS[label])
        steps = max(1, round(fraction * examples / recipe.batch_size))
        job = recipe.build_job(steps=steps, device=args.device,
                               warmup_steps=min(base.train_config.warmup_steps, max(1, steps // 10)))
        result = train(job.model, job.phases, job.batch_fn, job.config,
                       out_dir=Path(args.runs) / label.split(" (")[0].replace(" ", "_").replace(",", ""),
                       resume=True)
        final = (result.ema if result.ema is not None else result.model).eval()
        tic = time.time()
        metrics = recipe.evaluate(final, n=args.n, seed=0)
        runs[label] = {"switch": VARIANTS[label], "steps": steps, "batch_size": recipe.batch_size,
                       "train_wall_seconds": result.wall_seconds, "eval_wall_seconds": time.time() - tic,
                       "final_loss": result.history[-1]["loss"], "commit": git_commit(),
                       "machine": machine_description(args.device), "sampling": metrics["sampling"],
                       **{k: metrics[k] for k in SCORES}}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        print(f"{label}: {steps} steps of {recipe.batch_size}: attribute accuracy "
              f"{metrics['attribute_accuracy']:.3f}, FID-SB {metrics['fid_sb']:.1f}", flush=True)
    print(f"done in {(time.time() - start) / 60:.1f} min; wrote {out}")


if __name__ == "__main__":
    main()
