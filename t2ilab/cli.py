"""The `t2ilab` command line: `t2ilab data` generates and describes the data set."""
from __future__ import annotations

import argparse
import sys
import time


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2ilab", description="Text-to-image generation, three ways.")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="generate (or load) SynthBirds-200 and print its figures")
    data.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    data.add_argument("--root", default=None, help="cache folder (default $T2ILAB_HOME or ~/.cache/t2ilab)")
    data.add_argument("--grid", default=None, help="also save a PNG grid of 8 species x 8 images here")
    data.set_defaults(func=_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
