"""Your own prompts for `t2ilab sample`: checked against the captions' alphabet and words, and the drawn birds
saved as a titled PNG grid with the settings in its metadata."""
from __future__ import annotations

import difflib
import json
import os
import re
import sys
import textwrap
from pathlib import Path

from .errors import UsageError
from . import zoo
from .viz import image_grid


def caption_vocabulary() -> list[str]:
    """The words of the training captions (the mini-CLIP word tokenizer's vocabulary, without special tokens)."""

    vocab = zoo.load_card("clip-birds")["tokenizer"]["vocab"]
    return [w for w in vocab if not (w.startswith("<") and w.endswith(">"))]


def check_prompt(prompt: str) -> str:
    """A prompt the course's models can read: not empty, only the caption alphabet, only known words (with the
    nearest known words suggested for each unknown one). Returns it with its spaces normalised."""
    if not prompt.strip():
        raise UsageError("empty prompt: describe the bird, e.g. \"a small bird with a red crown\"")
    strange = sorted({c for c in prompt if not re.match(r"[A-Za-z0-9 ,.;:'\-]", c)})
    if strange:
        raise UsageError(f"the prompt has characters the captions never use: {' '.join(strange)} "
                         f"(the captions are plain English letters)")
    vocabulary = set(caption_vocabulary())
    unknown = [w for w in re.findall(r"[a-z]+(?:-[a-z]+)*", prompt.lower()) if w not in vocabulary]
    if unknown:
        def hint(word: str) -> str:
            close = difflib.get_close_matches(word, vocabulary, 3)
            return f"{word!r} (did you mean {', '.join(close) or 'nothing close'}?)"

        raise UsageError(f"words outside the captions' vocabulary: {'; '.join(map(hint, dict.fromkeys(unknown)))}; "
                         f"t2ilab sample --list shows them all")
    return " ".join(prompt.split())


def check_output(out: Path) -> Path:
    """A PNG path this process can write, or a one-line error saying why not."""
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a .png file name")
    if not out.parent.is_dir():
        raise UsageError(f"the folder of {out} does not exist")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UsageError(f"cannot write {out}: the folder or file is not writable")
    if out.suffix.lower() != ".png":
        raise UsageError(f"the output must be a .png file, got {out.name}")
    return out


def save_grid(images, path: Path, prompt: str, settings: dict) -> None:
    """A PNG grid of the images with the prompt as its title (or, for a model that does not read captions, a title
    and a note on stderr that say so); settings in the PNG's text metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image, PngImagePlugin

    ncol = min(8, len(images))
    grid = image_grid(images.clamp(-1, 1), ncol=ncol)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * ncol), 1.1 * ((len(images) + ncol - 1) // ncol) + 0.7))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if settings.get("prompt_read", True):
        title = "\n".join(textwrap.wrap(prompt, 60)) + f"\n{settings['model']}"
    else:
        title = f"{settings['model']}: unconditional, the prompt is not read"
        print(f"note: {settings['model']} does not read captions; its birds ignore the prompt", file=sys.stderr)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    info = PngImagePlugin.PngInfo()
    for key, value in settings.items():
        info.add_text(f"t2ilab:{key}", json.dumps(value) if not isinstance(value, str) else value)
    with Image.open(path) as picture:
        picture.load()
        picture.save(path, pnginfo=info)
