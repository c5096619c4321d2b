"""Sampling throughput of a released token generator, with and without the KV cache (chapter "Birds token by token").

Draws images for the first N test captions at batch B with the model's default sampling options (classifier-free
guidance included), once with the key-value cache and once recomputing the whole sequence for every token, and
records images per second (tokens only, and tokens plus VQ-VAE decoding) with the thread count and machine.

    python benchmarks/token_sampling.py dalle-birds32 --batch 100     # -> benchmarks/results/token_sampling_NAME.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from t2ilab import zoo
from t2ilab.autoregressive import caption_ids
from t2ilab.data import SynthBirds
from t2ilab.recipes import get_preset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="dalle-birds32")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    recipe, model = get_preset(args.model), zoo.load(args.model)
    options = recipe.options()
    test = SynthBirds("test", image_size=32)
    captions = [test.captions[i][0] for i in range(args.batch)]
    ids = caption_ids(model.text_tokenizer, captions, model.cfg.text_length)
    record = {"model": args.model, "sha256": zoo.load_card(args.model)["sha256"], "batch": args.batch,
              "options": dataclasses.asdict(options),
              "threads": torch.get_num_threads(), "machine": zoo.machine_description("cpu"),
              "commit": zoo.git_commit(), "command": "python " + " ".join(sys.argv)}
    tokens = {}
    for cached in (True, False):
        started = time.perf_counter()
        tokens[cached] = model.generate(ids, torch.Generator().manual_seed(0), options.guidance_scale,
                                        options.temperature, options.top_k, options.top_p, use_cache=cached)
        seconds = time.perf_counter() - started
        record[f"tokens_images_per_second_{'cache' if cached else 'recompute'}"] = args.batch / seconds
        print(f"{'with' if cached else 'without'} the cache: {args.batch / seconds:.1f} images/s (tokens only)")
    record["same_tokens"] = bool(torch.equal(tokens[True], tokens[False]))
    draw = recipe.text_to_image(model, options)
    started = time.perf_counter()
    draw(captions, torch.Generator().manual_seed(0))
    record["images_per_second"] = args.batch / (time.perf_counter() - started)
    record["cache_speedup"] = (record["tokens_images_per_second_cache"]
                               / record["tokens_images_per_second_recompute"])
    print(f"with decoding: {record['images_per_second']:.1f} images/s; the cache is "
          f"{record['cache_speedup']:.1f}x faster; same tokens: {record['same_tokens']}")
    out = Path(args.out or f"benchmarks/results/token_sampling_{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
