"""Birds whose attributes are drawn independently: the judges' training set and the "unseen combinations" split
(chapter "How we measure text-to-image models").

SynthBirds-200's 200 species are 200 points of a space of 10 x 10 x 10 x 4 x 4 x 2 x 4 x 3 = 384,000 attribute
combinations. A judge trained only on the species can learn to recognise the species and read its attributes off
it (a shortcut): it then reads a bird that is not a species as the nearest species. Two things fix the measuring:

- judges train on birds whose eight attributes are drawn independently per image (`independent_birds`), so that
  every part must be read on its own; one combination in `RESERVED_MODULUS` is *reserved* (never drawn for
  training), by a fixed rule on its mixed-radix index;
- the protocol's second split (`unseen_split`) holds captions whose stated attributes match no species, each with
  a real bird of a reserved combination that has every stated attribute: no judge trained on that bird's
  combination, and no training image of any generator has every attribute its caption states.

Birds are drawn by `birds.sample_scenes` and `birds.render`, the path SynthBirds-200 itself is drawn by: the same
nuisances (pose, background, perch, light), only the attribute combination differs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from . import birds
from .attributes import BIRD_GROUPS, NUISANCE_GROUPS
from .captions import make_caption
from .synthbirds import downsample

GROUPS = tuple(BIRD_GROUPS)
RADIX = np.array([len(BIRD_GROUPS[g]) for g in GROUPS])  # values per group, in BIRD_GROUPS order
NUM_COMBINATIONS = int(np.prod(RADIX))  # 384,000
RESERVED_MODULUS = 7  # a combination whose mixed-radix index is 0 mod 7 is never drawn for a judge's training
JUDGE_SEED, UNSEEN_SEED = 24_001, 24_002  # streams of their own, apart from the data set's seeds
UNSEEN_SPLIT_SIZE = 2_000  # captions in the unseen-combinations split (the protocol's N=2000)
SPLITS = ("seen", "unseen")


def combination_index(codes: np.ndarray) -> np.ndarray:
    """Mixed-radix index in [0, NUM_COMBINATIONS) of attribute codes (..., 8), groups in BIRD_GROUPS order."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape[-1] != len(GROUPS) or (codes < 0).any() or (codes >= RADIX).any():
        raise ValueError(f"codes must be (..., {len(GROUPS)}) value indices below {RADIX.tolist()}")
    index = np.zeros(codes.shape[:-1], dtype=np.int64)
    for j in range(len(GROUPS)):
        index = index * RADIX[j] + codes[..., j]
    return index


def is_reserved(codes: np.ndarray) -> np.ndarray:
    """True where a combination is held out of every judge's training (about one in `RESERVED_MODULUS`)."""
    return combination_index(codes) % RESERVED_MODULUS == 0


def species_codes(species_table: list[birds.Species] | None = None) -> np.ndarray:
    """(200, 8) attribute codes of the species."""
    table = species_table or birds.make_species()
    return np.array([[BIRD_GROUPS[g].index(s.attributes[g]) for g in GROUPS] for s in table])


def matching_species(stated: dict[str, str], codes: np.ndarray) -> np.ndarray:
    """Indices of the species (rows of `codes`) that have every attribute in `stated` ({group: value})."""
    match = np.ones(len(codes), dtype=bool)
    for group, value in stated.items():
        match &= codes[:, GROUPS.index(group)] == BIRD_GROUPS[group].index(value)
    return np.flatnonzero(match)


def _render(codes: np.ndarray, rng: np.random.Generator, image_size: int,
            batch_size: int = 256) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Render one bird per row of `codes` with nuisances drawn like the data set's: ((N, 3, S, S) uint8, nuisances)."""
    table = [birds.Species(i, "", {g: BIRD_GROUPS[g][int(v)] for g, v in zip(GROUPS, row)})
             for i, row in enumerate(codes)]
    scenes = birds.sample_scenes(np.arange(len(codes)), table, rng)
    images = [downsample(birds.render({k: v[s: s + batch_size] for k, v in scenes.items()}).images, image_size)
              for s in range(0, len(codes), batch_size)]
    nuisances = {g: torch.as_tensor(scenes[g]) for g in NUISANCE_GROUPS}
    return torch.cat(images) if images else torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8), nuisances


def draw_unreserved(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 8) attribute codes drawn uniformly and independently per group, reserved combinations redrawn."""
    codes = np.zeros((0, len(GROUPS)), dtype=np.int64)
    while len(codes) < n:
        draw = rng.integers(0, RADIX, (2 * (n - len(codes)) + 8, len(GROUPS)))
        codes = np.concatenate([codes, draw[~is_reserved(draw)]])
    return codes[:n]


@dataclass
class IndependentBirds:
    """Judge training birds: images (N, 3, S, S) uint8, attribute codes (N, 8), nuisance labels {group: (N,)}."""

    images: torch.Tensor
    attribute_index: torch.Tensor
    nuisances: dict[str, torch.Tensor]


def independent_birds(n: int, image_size: int = 32, seed: int = 0) -> IndependentBirds:
    """`n` birds with independently drawn attributes and no reserved combination (~560 renders/s on 2 cores)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([JUDGE_SEED, seed])
    codes = draw_unreserved(n, rng)
    images, nuisances = _render(codes, rng, image_size)
    return IndependentBirds(images, torch.as_tensor(codes), nuisances)


@dataclass
class UnseenSplit:
    """The unseen-combinations split: one caption per item, whose stated attributes match no species, and a real
    bird of a reserved combination with every stated attribute."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    captions: list[str]
    stated: list[dict[str, str]]  # what each caption states, {group: value}
    attribute_index: torch.Tensor  # (N, 8) the reference bird's full combination

    def image_tensor(self, indices=None) -> torch.Tensor:
        x = self.images if indices is None else self.images[indices]
        return x.float() / 127.5 - 1.0


@functools.lru_cache(maxsize=4)
def unseen_split(seed: int = 0, image_size: int = 32, size: int = UNSEEN_SPLIT_SIZE) -> UnseenSplit:
    """The unseen-combinations split for a seed (the same seed gives the same captions and bytes).

    Each item: a reserved combination that is no species; a caption of it redrawn until the attributes it states
    match no species (captions state 3 to 6 of the 8 groups); the bird rendered from the full combination."""
    rng = np.random.default_rng([UNSEEN_SEED, seed])
    known = species_codes()
    known_index = set(combination_index(known).tolist())
    codes, captions, stated = [], [], []
    while len(codes) < size:
        code = rng.integers(0, RADIX)
        if not is_reserved(code) or int(combination_index(code)) in known_index:
            continue
        attrs = {g: BIRD_GROUPS[g][int(v)] for g, v in zip(GROUPS, code)}
        for _ in range(20):  # a caption that states few groups can match a species: state others
            text, said = make_caption(attrs, rng)
            if len(matching_species(said, known)) == 0:
                codes.append(code)
                captions.append(text)
                stated.append(said)
                break
    codes = np.stack(codes)
    images, _ = _render(codes, rng, image_size)
    return UnseenSplit(images, captions, stated, torch.as_tensor(codes))


def species_shortcut(codes: np.ndarray, species_table: list[birds.Species] | None = None) -> np.ndarray:
    """What a judge that recognises species reads: the codes of the species nearest each bird (most attributes in
    common). Exact on the 200 species; on other combinations it is wrong wherever the nearest species differs."""
    known = species_codes(species_table)
    agreement = (np.asarray(codes)[:, None, :] == known[None]).sum(-1)  # (N, 200)
    return known[agreement.argmax(1)]


def one_part_changed(group: str, n: int = 100, seed: int = 0) -> np.ndarray:
    """The same `n` birds (independent attributes, same nuisances) drawn once per value of `group`:
    (values, n, 64, 64, 3) uint8 at the rendering size. What differs between two values is all a judge can read
    of that part (`legible_pixels`)."""
    parts = tuple(g for g in GROUPS if g != "size")  # size scales the whole bird, not one part
    if group not in parts:
        raise ValueError(f"group must be one of {parts}, got {group!r}")
    rng = np.random.default_rng([JUDGE_SEED, 1, seed])
    codes = draw_unreserved(n, rng)
    table = [birds.Species(i, "", {g: BIRD_GROUPS[g][int(v)] for g, v in zip(GROUPS, row)})
             for i, row in enumerate(codes)]
    scenes = birds.sample_scenes(np.arange(n), table, rng)
    views = []
    for value in range(len(BIRD_GROUPS[group])):
        changed = dict(scenes, **{f"attr_{group}": np.full(n, value)})
        views.append(birds.render(changed).images)
    return np.stack(views)


def legible_pixels(views: np.ndarray, image_size: int, threshold: int = 24) -> np.ndarray:
    """For each pair of values of `one_part_changed`'s views, the mean number of pixels (at `image_size`) where the
    two images differ by more than `threshold` of 255 in some channel: (pairs,)."""
    x = [downsample(v, image_size).float() for v in views]
    return np.array([float(((x[a] - x[b]).abs().amax(1) > threshold).float().sum((1, 2)).mean())
                     for a in range(len(x)) for b in range(a + 1, len(x))])
