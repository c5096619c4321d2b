"""Real CUB-200-2011 with Reed et al.'s text_c10 captions, behind the SynthBirds interface.

Chapter "Birds, captions and tokens", section "Switching to real CUB". Nothing here downloads: the
archive URL and its MD5 are given for users with network, and `CUB200` reads the official layout

    CUB_200_2011/images.txt  train_test_split.txt  image_class_labels.txt  bounding_boxes.txt  images/...
    text_c10/<class folder>/<image name>.txt   (ten captions per image, Reed et al., 2016)

Items are `BirdItem`s, like SynthBirds'. Real photos carry no ground-truth attributes in our groups, so
`attributes` holds what the image's captions state, read with `parse_attributes` and decided by majority
over the ten captions: noisy, but the same measuring stick as on SynthBirds.
"""
from __future__ import annotations

import collections
import functools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .captions import parse_attributes
from .synthbirds import BirdItem, Split

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
CUB_MD5 = "97eceeb196236b17998738112f37df78"
TEXT_C10_SOURCE = "https://github.com/reedscot/cvpr2016 (file cvpr2016_cub.tar.gz, folder text_c10)"
REQUIRED_FILES = ("images.txt", "train_test_split.txt", "image_class_labels.txt", "bounding_boxes.txt")


def _read_table(path: Path, columns: int) -> dict[int, list[str]]:
    """Lines 'id value...' with `columns` values -> {id: [value, ...]}; a malformed line is named."""
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            key, *values = line.split()
            if not key.isdigit() or len(values) != columns:
                raise ValueError(f"{path}, line {number}: expected an image id and {columns} value(s), got {line!r}")
            table[int(key)] = values
    return table


def _validate(root: Path, captions_root: Path, paths, is_train, labels, boxes, ids: list[int]) -> None:
    """Every image of the split has a split flag, a label, a box of positive size, its image file and a non-empty
    caption file: checked when the data set is opened, so that a half-copied folder fails here (not mid-epoch),
    naming the first bad file."""
    for table, name in ((is_train, "train_test_split.txt"), (labels, "image_class_labels.txt"),
                        (boxes, "bounding_boxes.txt")):
        missing = [i for i in paths if i not in table]
        if missing:
            raise ValueError(f"{root / name} has no line for image id {missing[0]} ({paths[missing[0]][0]}) "
                             f"and {len(missing) - 1} more")
    for i in ids:
        try:
            w, h = float(boxes[i][2]), float(boxes[i][3])
        except ValueError:
            raise ValueError(f"{root / 'bounding_boxes.txt'}: the box of image id {i} is not numeric: {boxes[i]}") from None
        if w <= 0 or h <= 0:
            raise ValueError(f"{root / 'bounding_boxes.txt'}: the box of image id {i} has zero or negative size "
                             f"({w} x {h})")
        if not (root / "images" / paths[i][0]).is_file():
            raise FileNotFoundError(f"image missing: {root / 'images' / paths[i][0]}")
        caption_file = captions_root / Path(paths[i][0]).with_suffix(".txt")
        if not caption_file.is_file():
            raise FileNotFoundError(f"captions file missing: {caption_file}")
        if not caption_file.read_text().strip():
            raise ValueError(f"captions file is empty: {caption_file}")


def crop_box(bbox: tuple[float, float, float, float], width: int, height: int, margin: float = 1.5):
    """Square crop around a bird box (x, y, w, h), `margin` times its longer side, clipped to the image.

    StackGAN and its successors crop CUB this way (Zhang et al., 2017), so that birds fill the frame."""
    x, y, w, h = bbox
    cx, cy, half = x + w / 2, y + h / 2, margin * max(w, h) / 2
    left, top = max(0, int(cx - half)), max(0, int(cy - half))
    right, bottom = min(width, int(cx + half)), min(height, int(cy + half))
    return left, top, right, bottom


class CUB200(Dataset):
    """CUB-200-2011 from disk, same items as `SynthBirds`.

    Args:
        root: the folder holding `images.txt` (usually `.../CUB_200_2011`).
        split: "train" (5,994 images) or "test" (5,794 images).
        image_size: side of the square output images.
        captions_root: the `text_c10` folder; default `root/text_c10`, then `root/../text_c10`.
        crop: crop each image around its bounding box before resizing.
        caption_seed: seeds the generator that picks one of the ten captions on each access.
    """

    def __init__(self, root: str | os.PathLike, split: Split = "train", image_size: int = 32,
                 captions_root: str | os.PathLike | None = None, crop: bool = True, caption_seed: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root = Path(root).expanduser()
        missing = [f for f in REQUIRED_FILES if not (self.root / f).exists()]
        if not self.root.is_dir() or missing:
            raise FileNotFoundError(
                f"CUB-200-2011 layout incomplete at {self.root}: missing {missing or ['the folder itself']}. "
                f"Download {CUB_URL} (MD5 {CUB_MD5}), extract it, and pass the CUB_200_2011 folder.")
        if captions_root is None:
            candidates = [self.root / "text_c10", self.root.parent / "text_c10"]
            captions_root = next((c for c in candidates if c.is_dir()), candidates[0])
        self.captions_root = Path(captions_root)
        if not self.captions_root.is_dir():
            raise FileNotFoundError(f"text_c10 captions not found at {self.captions_root}; "
                                    f"get them from {TEXT_C10_SOURCE} or pass captions_root=")

        paths = _read_table(self.root / "images.txt", 1)
        is_train = _read_table(self.root / "train_test_split.txt", 1)
        labels = _read_table(self.root / "image_class_labels.txt", 1)
        boxes = _read_table(self.root / "bounding_boxes.txt", 4)
        want = "1" if split == "train" else "0"
        _validate(self.root, self.captions_root, paths, is_train, labels, boxes, sorted(paths))
        self.ids = [i for i in sorted(paths) if is_train[i][0] == want]
        self.paths = [paths[i][0] for i in self.ids]
        self.species = torch.tensor([int(labels[i][0]) - 1 for i in self.ids])  # CUB's classes are 1-based
        self.boxes = [tuple(float(v) for v in boxes[i]) for i in self.ids]
        self.split, self.image_size, self.crop = split, image_size, crop
        self.generator = torch.Generator().manual_seed(caption_seed)

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def images(self) -> torch.Tensor:
        """Every image of the split, cropped and resized, as (N, 3, S, S) uint8 (as `SynthBirds.images`)."""
        return torch.stack([((self.load_image(i)[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                            for i in range(len(self))])

    @functools.cached_property
    def captions(self) -> list[tuple[str, ...]]:
        """The captions of every image of the split (as `SynthBirds.captions`)."""
        return [self.captions_of(i) for i in range(len(self))]

    def image_tensor(self, indices=None) -> torch.Tensor:
        """Images as one float tensor (N, 3, S, S) in [-1, 1]."""
        x = self.images if indices is None else self.images[indices]
        return x.float() / 127.5 - 1.0

    def captions_of(self, i: int) -> tuple[str, ...]:
        path = self.captions_root / Path(self.paths[i]).with_suffix(".txt")
        if not path.exists():
            raise FileNotFoundError(f"captions file missing: {path}")
        return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())

    def load_image(self, i: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """(3, size, size) in [-1, 1] and the bird box in output pixels."""
        path = self.root / "images" / self.paths[i]
        if not path.exists():
            raise FileNotFoundError(f"image missing: {path}")
        image = Image.open(path).convert("RGB")
        x, y, w, h = self.boxes[i]
        left, top, right, bottom = (crop_box(self.boxes[i], *image.size) if self.crop
                                    else (0, 0, image.width, image.height))
        image = image.crop((left, top, right, bottom))
        sx, sy = self.image_size / image.width, self.image_size / image.height
        image = image.resize((self.image_size, self.image_size), Image.BICUBIC)
        bbox = (round((x - left) * sx), round((y - top) * sy), round(w * sx), round(h * sy))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
        return pixels / 127.5 - 1.0, bbox

    def __getitem__(self, i: int) -> BirdItem:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for CUB200({self.split!r}) of length {len(self)}")
        i = i % len(self)
        image, bbox = self.load_image(i)
        captions = self.captions_of(i)
        k = int(torch.randint(len(captions), (1,), generator=self.generator))
        return BirdItem(image, captions[k], captions, stated_attributes(captions), int(self.species[i]), bbox, i)


def stated_attributes(captions: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Per attribute group, the value most captions state (ties: the first stated)."""
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for caption in captions:
        for group, value in parse_attributes(caption).items():
            votes[group][value] += 1
    return {group: counter.most_common(1)[0][0] for group, counter in votes.items()}


def write_layout(root: str | os.PathLike, images: torch.Tensor, species: list[int], captions: list[list[str]],
                 is_train: list[bool], class_names: list[str] | None = None) -> Path:
    """Write images (B, 3, H, W in [-1, 1]) and captions in CUB's on-disk layout under `root`.

    Returns the `CUB_200_2011` folder. Tests and the data chapter use it to exercise `CUB200` without
    the real archive; it is also how to bring a bird collection of your own into the course."""
    root = Path(root)
    cub, text = root / "CUB_200_2011", root / "text_c10"
    (cub / "images").mkdir(parents=True, exist_ok=True)
    num_classes = max(species) + 1
    names = class_names or [f"{c + 1:03d}.Species_{c + 1}" for c in range(num_classes)]
    rows: dict[str, list[str]] = {"images.txt": [], "train_test_split.txt": [], "image_class_labels.txt": [],
                                  "bounding_boxes.txt": [], "classes.txt": [f"{c + 1} {n}" for c, n in enumerate(names)]}
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, (image, label, lines, train) in enumerate(zip(pixels, species, captions, is_train), start=1):
        folder = names[label]
        name = f"{folder.split('.', 1)[-1]}_{i:04d}"
        (cub / "images" / folder).mkdir(exist_ok=True)
        (text / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(cub / "images" / folder / f"{name}.jpg", quality=95)
        (text / folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        h, w = image.shape[:2]
        rows["images.txt"].append(f"{i} {folder}/{name}.jpg")
        rows["train_test_split.txt"].append(f"{i} {int(train)}")
        rows["image_class_labels.txt"].append(f"{i} {label + 1}")
        rows["bounding_boxes.txt"].append(f"{i} {w / 8:.1f} {h / 8:.1f} {3 * w / 4:.1f} {3 * h / 4:.1f}")
    for file, lines in rows.items():
        (cub / file).write_text("\n".join(lines) + "\n")
    return cub
