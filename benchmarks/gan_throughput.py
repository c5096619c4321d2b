"""Sampling throughput of a released GAN at a large batch (chapter "One generator, deep fusion"; the GAN issue asks
for at least 1,000 images/s at 32x32 and batch 256 on two CPU cores).

Times, for the first B test captions, each as the median of R repeats after one warm-up: the whole text-to-image
call (text tower included) at the model's default sampling options and, for DF-GAN's one-pass generator, its
forward pass alone on sentence features computed beforehand, in float32 and in bfloat16 autocast (its images are
compared with float32's). Records images per second with the thread count, machine and commit.

    python benchmarks/gan_throughput.py dfgan-birds32 --batch 256   # -> benchmarks/results/gan_throughput_NAME.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from t2ilab import zoo
from t2ilab.data import SynthBirds
from t2ilab.gan import DFGenerator
from t2ilab.recipes import get_preset
from t2ilab.recipes.base import frozen_clip
from t2ilab.gan import sentence_features


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, kernels
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="dfgan-birds32")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be positive")
    recipe, generator = get_preset(args.model), zoo.load(args.model)
    if recipe.family != "gan":
        parser.error(f"{args.model} is not a GAN (family {recipe.family!r})")
    generator.eval()
    test = SynthBirds("test", image_size=32)
    captions = [test.captions[i % len(test.captions)][0] for i in range(args.batch)]
    sentences = sentence_features(frozen_clip("cpu"), captions)
    z = torch.randn(args.batch, generator.cfg.z_dim, generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def forward():
        return generator(z, sentences)

    def forward_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward()

    draw = recipe.text_to_image(generator)
    record = {"model": args.model, "sha256": zoo.load_card(args.model)["sha256"], "batch": args.batch,
              "repeats": args.repeats, "threads": torch.get_num_threads(),
              "machine": zoo.machine_description("cpu"), "commit": zoo.git_commit(),
              "command": "python " + " ".join(sys.argv)}
    timed = [("text_to_image", lambda: draw(captions, torch.Generator().manual_seed(0)))]
    if isinstance(generator, DFGenerator):  # one pass of (z, s); the tree and the DDGAN chain have other inputs
        timed = [("generator", forward), ("generator_bfloat16", forward_bf16)] + timed
        record["bfloat16_max_abs_difference"] = float((forward_bf16().float() - forward()).abs().max())
    for label, fn in timed:
        record[f"{label}_images_per_second"] = args.batch / _median_seconds(fn, args.repeats)
        print(f"{label}: {record[f'{label}_images_per_second']:.0f} images/s at batch {args.batch}")
    out = Path(args.out or f"benchmarks/results/gan_throughput_{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
