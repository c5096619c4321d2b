"""Which network's features define FID-SB once the judges read parts? The measurement behind the choice (chapter "How
we measure text-to-image models"; issue: judges that read parts).

Two candidates, both released: `fid-birds` (the evaluator trained on the species' clean images alone, which defined
FID-SB until the judges were retrained) and `evaluator-birds` (retrained on birds of independent attributes and on
degraded views, the first attribute judge). Features that define realism must

1. see blur and noise: how far a degraded view of real test birds moves from the clean ones (FID-SB between them),
   as a share of the clean features' total variance (FID values of two feature spaces are not comparable directly);
2. tell birds of unseen combinations from the species: FID-SB between real seen and real unseen birds, and of the
   lookup oracle's training images (the best copy of each unseen caption) against the unseen references, both
   over the real floor of the same split (two independent real sets), so that a copy cannot pass for composition.

    python benchmarks/fid_features.py --n 2000      # -> benchmarks/results/fid_features.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from t2ilab import zoo
from t2ilab.data import SynthBirds
from t2ilab.data.composition import unseen_split
from t2ilab.metrics.fid import feature_stats, fid
from t2ilab.metrics.lookup import lookup
from t2ilab.metrics.protocol import reference_set
from t2ilab.recipes.evaluator import degraded_views

CANDIDATES = ("fid-birds", "evaluator-birds")


@torch.no_grad()
def measure(network, n: int) -> dict:
    seen, unseen = reference_set(n, 0), reference_set(n, 0, split="unseen")
    train = SynthBirds("train")
    g = torch.Generator().manual_seed(1)
    sample = train.image_tensor(torch.randperm(len(train), generator=g)[:n])  # a real set apart from the seen one
    other = unseen_split(1).image_tensor()[:n]  # a second real set of unseen combinations (another seed)
    oracle = lookup("lookup-oracle", train)(unseen.captions, torch.Generator().manual_seed(0))

    def features(x):
        return network.predict(x)[0]

    clean = features(seen.images)
    variance = float(torch.trace(feature_stats(clean.double())[1]))
    out = {"views": {}}
    for view, images in degraded_views(seen.images, zoo.load("vqvae-birds32")).items():
        if view != "clean":
            shift = fid(clean, features(images))
            out["views"][view] = {"fid_sb": shift, "share_of_variance": shift / variance}
    unseen_features = features(unseen.images)
    floors = {"seen": fid(clean, features(sample)), "unseen": fid(unseen_features, features(other))}
    out["floor"] = floors
    out["seen_vs_unseen"] = fid(clean, unseen_features)
    out["oracle_copies_on_unseen"] = fid(unseen_features, features(oracle))
    out["seen_vs_unseen_over_floor"] = out["seen_vs_unseen"] / floors["seen"]
    out["oracle_copies_over_floor"] = out["oracle_copies_on_unseen"] / floors["unseen"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images per set (at most 2000, the unseen split)")
    parser.add_argument("--out", default="benchmarks/results/fid_features.json")
    args = parser.parse_args(argv)
    started = time.time()
    record = {"n": args.n, "command": "python " + " ".join(sys.argv), "commit": zoo.git_commit(),
              "machine": zoo.machine_description("cpu"),
              "networks": {name: zoo.load_card(name)["sha256"] for name in CANDIDATES}, "candidates": {}}
    for name in CANDIDATES:
        record["candidates"][name] = measure(zoo.load(name), args.n)
        print(name, json.dumps(record["candidates"][name], indent=1))
    record["wall_seconds"] = time.time() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
