"""The SynthBirds-200 data set: generation, on-disk cache and the torch Dataset (chapter "Birds, captions and tokens").

`generate(seed)` draws species counts, the train/test split, every image's nuisances and its ten captions
from one numpy PCG64 stream, then renders the images (`birds.render`). The result is cached under
`$T2ILAB_HOME/synthbirds200-v1-<digest of the generator's code>-seed{seed}/` (default `~/.cache/t2ilab`) as `images.npy` (uint8, N x 64 x 64 x 3)
and `meta.json`; later loads take a fraction of a second.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from . import birds
from .attributes import BIRD_GROUPS, NUISANCE_GROUPS
from .captions import make_caption
from .tokenizers import BPETokenizer, WordTokenizer

CAPTIONS_PER_IMAGE = 10
TRAIN_IMAGES, TEST_IMAGES = 5_994, 5_794  # CUB-200-2011's split, which SynthBirds-200 copies species by species
FORMAT_VERSION = "v1"
Split = Literal["train", "test"]


def t2ilab_home() -> Path:
    """Where t2ilab caches generated data: `$T2ILAB_HOME`, default `~/.cache/t2ilab`."""
    return Path(os.environ.get("T2ILAB_HOME", Path.home() / ".cache" / "t2ilab")).expanduser()


class BirdItem(NamedTuple):
    """One example; a NamedTuple so that torch's default collate batches it."""

    image: torch.Tensor  # (3, H, W) float in [-1, 1]
    caption: str  # one of `captions`, drawn per access
    captions: tuple[str, ...]
    attributes: dict[str, str]  # bird attribute group -> value
    species: int
    bbox: tuple[int, int, int, int]  # x, y, w, h in pixels of `image`
    index: int  # position in the split


@dataclass
class SynthBirdsData:
    """All 11,788 images and their ground truth, as generated (before the split is applied)."""

    images: np.ndarray  # (N, 64, 64, 3) uint8
    species: np.ndarray  # (N,) int
    is_train: np.ndarray  # (N,) bool
    bbox: np.ndarray  # (N, 4) int16: x, y, w, h at 64x64
    captions: list[list[str]]  # N x 10
    nuisances: dict[str, np.ndarray]  # facing, pose, background, perch indices; (N,) each
    species_table: list[birds.Species]


def sample_metadata(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[list[str]]]:
    """Everything random except the pixels: (scenes, species ids, is_train, captions)."""
    species_table = birds.make_species()
    rng = np.random.default_rng(seed)
    train_counts, test_counts = birds.species_image_counts()
    species_ids = np.repeat(np.arange(birds.NUM_SPECIES), train_counts + test_counts)  # species-major, like CUB
    is_train = np.zeros(len(species_ids), dtype=bool)
    start = 0
    for s in range(birds.NUM_SPECIES):
        members = start + rng.permutation(train_counts[s] + test_counts[s])
        is_train[members[: train_counts[s]]] = True
        start += train_counts[s] + test_counts[s]
    scenes = birds.sample_scenes(species_ids, species_table, rng)
    captions = [[make_caption(species_table[s].attributes, rng)[0] for _ in range(CAPTIONS_PER_IMAGE)]
                for s in species_ids]
    return scenes, species_ids, is_train, captions


def render_subset(scenes: dict[str, np.ndarray], indices: np.ndarray, batch_size: int = 256,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render the images at `indices`; returns (len, 64, 64, 3) uint8 and (len, 4) boxes."""
    images, boxes = [], []
    for start in tqdm(range(0, len(indices), batch_size), desc="rendering SynthBirds-200", disable=not progress):
        rows = indices[start: start + batch_size]
        img, box, _ = birds.render({k: v[rows] for k, v in scenes.items()})
        images.append(img)
        boxes.append(box)
    return np.concatenate(images), np.concatenate(boxes)


def generate(seed: int = 0, progress: bool = True) -> SynthBirdsData:
    """Generate the full SynthBirds-200 set for `seed` (about 20-40 s on two CPU cores)."""
    scenes, species_ids, is_train, captions = sample_metadata(seed)
    images, boxes = render_subset(scenes, np.arange(len(species_ids)), progress=progress)
    nuisances = {g: scenes[g] for g in NUISANCE_GROUPS}
    return SynthBirdsData(images, species_ids, is_train, boxes, captions, nuisances, birds.make_species())


def generator_digest() -> str:
    """Hash of the generator's source: any change to how birds or captions are made starts a new cache."""
    here = Path(__file__).parent
    sources = b"".join((here / f).read_bytes() for f in ("attributes.py", "birds.py", "captions.py", "synthbirds.py"))
    return hashlib.sha256(sources).hexdigest()[:10]


def cache_dir(seed: int = 0, root: str | os.PathLike | None = None) -> Path:
    """`<root>/synthbirds200-<format>-<generator digest>-seed<seed>`."""
    return Path(root or t2ilab_home()) / f"synthbirds200-{FORMAT_VERSION}-{generator_digest()}-seed{seed}"


class CacheDamaged(RuntimeError):
    """A cached data set that cannot be trusted: a file is missing, unreadable, or not what meta.json recorded."""


_VERIFIED: set[Path] = set()  # cache folders whose images matched their recorded sha256 in this process
STALE_SECONDS = 3600  # a temporary folder this old belongs to a run that died: another writer takes ~20 s


def load(seed: int = 0, root: str | os.PathLike | None = None, progress: bool = True) -> SynthBirdsData:
    """Load the cached set for `seed`, generating and caching it first if needed.

    The images are checked against the sha256 recorded in meta.json once per process; a damaged cache (a
    missing, truncated or altered file) is regenerated with a message saying why."""
    folder = cache_dir(seed, root)
    _remove_stale_temporaries(folder)
    if folder.exists():
        try:
            return _read(folder)
        except CacheDamaged as err:
            print(f"SynthBirds cache {folder} is damaged ({err}); regenerating it", file=sys.stderr)
            _VERIFIED.discard(folder)
            shutil.rmtree(folder, ignore_errors=True)
    _check_writable(folder.parent)
    _write(generate(seed, progress=progress), folder)
    return _read(folder)


def _read(folder: Path) -> SynthBirdsData:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        images = np.load(folder / "images.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # missing, truncated or not a .npy / JSON file
        raise CacheDamaged(f"{type(err).__name__}: {str(err)[:120]}") from err
    if images.shape != (len(meta["species"]), birds.RENDER_SIZE, birds.RENDER_SIZE, 3) or images.dtype != np.uint8:
        raise CacheDamaged(f"images.npy holds {images.shape} {images.dtype}, not the recorded images")
    if folder not in _VERIFIED:
        if hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest() != meta["images_sha256"]:
            raise CacheDamaged("images.npy does not match the sha256 recorded in meta.json")
        _VERIFIED.add(folder)
    table = [birds.Species(s["id"], s["name"], s["attributes"]) for s in meta["species_table"]]
    return SynthBirdsData(
        images=images,
        species=np.array(meta["species"]),
        is_train=np.array(meta["is_train"], dtype=bool),
        bbox=np.array(meta["bbox"], dtype=np.int16),
        captions=meta["captions"],
        nuisances={k: np.array(v) for k, v in meta["nuisances"].items()},
        species_table=table,
    )


def _check_writable(parent: Path) -> None:
    """Fail before minutes of rendering, not after, when the cache cannot be written."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=".t2ilab-write-test")
        probe.close()
    except OSError as err:
        raise PermissionError(f"cannot write the SynthBirds cache in {parent} ({err.strerror}); set T2ILAB_HOME to a "
                              f"writable folder") from None


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary folders of interrupted writes of this cache, older than STALE_SECONDS."""
    if not folder.parent.is_dir():
        return
    now = time.time()
    for tmp in folder.parent.glob(folder.name + ".tmp*"):
        try:
            if now - tmp.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _write(data: SynthBirdsData, folder: Path) -> None:
    """Write-then-rename, so an interrupted run never leaves a half-written cache behind."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a class may share one cache
    np.save(tmp / "images.npy", data.images)
    meta = {
        "format": FORMAT_VERSION,
        "images_sha256": hashlib.sha256(np.ascontiguousarray(data.images).tobytes()).hexdigest(),
        "species": data.species.tolist(),
        "is_train": data.is_train.tolist(),
        "bbox": data.bbox.tolist(),
        "captions": data.captions,
        "nuisances": {k: v.tolist() for k, v in data.nuisances.items()},
        "species_table": [{"id": s.id, "name": s.name, "attributes": s.attributes} for s in data.species_table],
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)


def downsample(images: np.ndarray, image_size: int) -> torch.Tensor:
    """(N, 64, 64, 3) uint8 -> (N, 3, size, size) uint8 by area averaging (size must divide 64)."""
    if image_size not in (32, 64):
        raise ValueError(f"image_size must be 32 or 64, got {image_size!r}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if image_size == birds.RENDER_SIZE:
        return x.contiguous()
    factor = birds.RENDER_SIZE // image_size
    return torch.nn.functional.avg_pool2d(x.float(), factor).round().to(torch.uint8)


def training_captions(seed: int = 0, root: str | os.PathLike | None = None) -> list[str]:
    """All ten captions of every training image (59,940 strings), in image order."""
    data = load(seed, root)
    return [c for r in np.flatnonzero(data.is_train) for c in data.captions[r]]


def word_tokenizer(seed: int = 0, root: str | os.PathLike | None = None, max_length: int = 40):
    """The word tokenizer of the training captions (the mini-CLIP text tower's input)."""

    return WordTokenizer.build(training_captions(seed, root), max_length=max_length)


def bpe_tokenizer(seed: int = 0, root: str | os.PathLike | None = None, vocab_size: int = 512):
    """The SentencePiece BPE model of the training captions, trained once and cached beside the data."""

    return BPETokenizer.train(training_captions(seed, root), vocab_size, cache=cache_dir(seed, root))


class SynthBirds(Dataset):
    """SynthBirds-200 as a torch Dataset: `SynthBirds("train", image_size=32)[i].image` is (3, 32, 32) in [-1, 1].

    Args:
        split: "train" (5,994 images) or "test" (5,794 images).
        image_size: 32 (the models' default) or 64 (the rendering size).
        root: cache folder; default `$T2ILAB_HOME` or `~/.cache/t2ilab`.
        seed: data seed; the same seed gives the same bytes.
        caption_seed: seeds the generator that picks one of an image's ten captions on each access.
    """

    def __init__(self, split: Split = "train", image_size: int = 32, root: str | os.PathLike | None = None,
                 seed: int = 0, caption_seed: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        data = load(seed, root)
        rows = np.flatnonzero(data.is_train if split == "train" else ~data.is_train)
        self.split, self.image_size, self.seed = split, image_size, seed
        self.images = downsample(data.images[rows], image_size)  # (N, 3, H, W) uint8
        self.species = torch.as_tensor(data.species[rows])
        self.bbox = torch.as_tensor(data.bbox[rows].astype(np.int64)) * image_size // birds.RENDER_SIZE
        self.captions = [tuple(data.captions[r]) for r in rows]
        self.species_table = data.species_table
        self.nuisances = {k: torch.as_tensor(v[rows]) for k, v in data.nuisances.items()}
        groups = list(BIRD_GROUPS)
        codes = np.array([[BIRD_GROUPS[g].index(s.attributes[g]) for g in groups] for s in data.species_table])
        self.attribute_index = torch.as_tensor(codes[data.species[rows]])  # (N, groups) value indices
        self.generator = torch.Generator().manual_seed(caption_seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> BirdItem:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for SynthBirds({self.split!r}) of length {len(self)}")
        i = i % len(self)
        k = int(torch.randint(CAPTIONS_PER_IMAGE, (1,), generator=self.generator))
        species = int(self.species[i])
        return BirdItem(
            image=self.images[i].float() / 127.5 - 1.0,
            caption=self.captions[i][k],
            captions=self.captions[i],
            attributes=dict(self.species_table[species].attributes),
            species=species,
            bbox=tuple(int(v) for v in self.bbox[i]),
            index=i,
        )

    def image_tensor(self, indices=None) -> torch.Tensor:
        """Images as one float tensor (N, 3, H, W) in [-1, 1], for metrics and plots."""
        x = self.images if indices is None else self.images[indices]
        return x.float() / 127.5 - 1.0

    @property
    def species_names(self) -> list[str]:
        return [s.name for s in self.species_table]
