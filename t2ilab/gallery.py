"""The book's landing picture: the same test captions drawn by one released generator of each family, beside the
real test bird each caption describes. `python -m t2ilab.gallery book/images/landing.png` redraws it (seconds on a
CPU); the models, captions and seed are fixed here, so the picture is the same on every machine."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import torch
from . import zoo
from .metrics.protocol import reference_set, to_protocol_size
from .recipes import get_preset
from .viz import to_uint8

# one generator per family (the family's best-known design), left to right after the real bird
MODELS = ("diffusion-text-birds32", "dalle-birds32", "dfgan-birds32")
CAPTIONS = 4  # rows: the first test captions of the protocol's seeded draw


def draw(models: tuple[str, ...] = MODELS, rows: int = CAPTIONS, seed: int = 0
         ) -> tuple[list[str], dict[str, torch.Tensor]]:
    """(captions, {column title: (rows, 3, 32, 32) images}): the real test birds, then each model's drawing of the
    same captions with its default sampling options and `seed`."""

    missing = [m for m in models if m not in zoo.available()]
    if missing:
        raise ValueError(f"not released: {', '.join(missing)} (t2ilab sample --list shows the released models)")
    reference = reference_set(max(rows, 10), seed)
    captions = reference.captions[:rows]
    columns = {"real test bird": reference.images[:rows]}
    for name in models:
        text_to_image = get_preset(name).text_to_image(zoo.load(name))
        columns[name.removesuffix("-birds32")] = to_protocol_size(
            text_to_image(captions, torch.Generator().manual_seed(seed)))
    return captions, columns


def figure(captions: list[str], columns: dict[str, torch.Tensor], width: float = 6.9):
    """A matplotlib figure: one row per caption (wrapped beside it), one column per source."""
    import matplotlib.pyplot as plt

    ncol = len(columns)
    fig, axes = plt.subplots(len(captions), ncol + 1, figsize=(width, 1.35 * len(captions)),
                             gridspec_kw={"width_ratios": [2.2] + [1] * ncol})
    for i, caption in enumerate(captions):
        axes[i, 0].text(0, 0.5, textwrap.fill(caption, 34), va="center", fontsize=7.5)
        axes[i, 0].axis("off")
        for j, (title, images) in enumerate(columns.items(), start=1):
            axes[i, j].imshow(to_uint8(images[i: i + 1])[0], interpolation="nearest")
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m t2ilab.gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the PNG to write, e.g. book/images/landing.png")
    args = parser.parse_args(argv)
    captions, columns = draw()
    figure(captions, columns).savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
