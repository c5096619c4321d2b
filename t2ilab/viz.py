"""Pictures for the book: image grids and captioned galleries (used in every chapter)."""
from __future__ import annotations

import textwrap

import numpy as np
import torch
from einops import rearrange
from .data import SynthBirds


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "b c h w -> b h w c").numpy()


def image_grid(images: torch.Tensor, ncol: int = 8, pad: int = 1) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> one (rows*(H+pad), ncol*(W+pad), 3) uint8 picture, white gaps."""
    pixels = to_uint8(images)
    b, h, w, _ = pixels.shape
    rows = -(-b // ncol)
    canvas = np.full((rows * ncol, h + pad, w + pad, 3), 255, dtype=np.uint8)
    canvas[:b, :h, :w] = pixels
    return rearrange(canvas, "(r c) h w ch -> (r h) (c w) ch", c=ncol)[:-pad or None, :-pad or None]


def show_grid(images: torch.Tensor, ncol: int = 8, title: str | None = None, scale: float = 0.35, ax=None):
    """Plot `image_grid` with matplotlib; returns the axes."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, ncol)
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * grid.shape[1] / 8, scale * grid.shape[0] / 8))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_captioned(images: torch.Tensor, captions: list[str], ncol: int = 4, width: int = 28):
    """A gallery with each image's caption under it; returns the figure."""
    import matplotlib.pyplot as plt

    pixels = to_uint8(images)
    rows = -(-len(pixels) // ncol)
    fig, axes = plt.subplots(rows, ncol, figsize=(2.6 * ncol, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, caption in zip(axes.flat, pixels, captions):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(textwrap.fill(caption, width), fontsize=8, y=-0.02, va="top")
    fig.tight_layout()
    return fig


def species_grid_images(dataset, species: list[int], per_species: int = 8) -> torch.Tensor:
    """The first `per_species` images of each species in `species`, species by row: (len*per, 3, H, W)."""
    rows = []
    for s in species:
        idx = torch.nonzero(dataset.species == s).flatten()[:per_species]
        if len(idx) < per_species:
            raise ValueError(f"species {s} has only {len(idx)} images in this split")
        rows.append(dataset.image_tensor(idx))
    return torch.cat(rows)


def save_species_grid(path: str, seed: int = 0, root=None, image_size: int = 32, upscale: int = 4) -> None:
    """Write a PNG of 8 species x 8 training images (the README's picture)."""
    from PIL import Image

    data = SynthBirds("train", image_size=image_size, root=root, seed=seed)
    species = list(range(0, 200, 25))
    grid = image_grid(species_grid_images(data, species), ncol=8, pad=2)
    Image.fromarray(grid).resize((grid.shape[1] * upscale, grid.shape[0] * upscale), Image.NEAREST).save(path)


def pipe_table(header: list[str], rows: list[list]) -> str:
    """A Markdown (GFM) pipe table of `rows` under `header`, as text."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list]):
    """A table for a notebook cell's output (`display(markdown_table(...))`): rendered as a table by JupyterLab and
    by the book (GFM), and narrow enough to stay readable where a printed table of padded columns would wrap."""
    from IPython.display import Markdown

    return Markdown(pipe_table(header, rows))
