"""The evaluation protocol every model of the course is measured with (chapter "How we measure text-to-image models").

`evaluate(model_fn, n, seed, split)` asks a text-to-image model for one image per caption of N fixed test items
(the same items and captions for every model with the same N, seed and split), and compares them with the N real
images of those items in the feature space of `fid-birds`. Two splits:

- "seen": test images of the 200 species the generators trained on, with one of their captions;
- "unseen": captions whose stated attributes match no species (`data.composition`), each with a real bird of a
  combination that has every stated attribute: no training image has all of them, so a generator that scores
  above a lookup of training images there (`metrics.lookup`) draws what no copy could.

The metrics:

- FID-SB and KID (quality and diversity together), precision/recall (k=3) and density/coverage (k=5);
- attribute accuracy (does the image show what the caption states?) and CLIP R-precision;
- the memorisation check: distance from each generated image to its nearest *training* image, relative to the
  same distance for real test images (near 1: like new real birds; far below 1: copies of training images);
- parameters and sampling throughput (images per second at a stated batch size and thread count).

Every generator is measured at the evaluator's resolution (`EvaluatorConfig.image_size`, 32x32): a model that
draws at another size (the 64x64 branch of a multi-stage GAN) is resized in one place, `to_protocol_size`, by
area averaging for downsampling (bilinear for upsampling), before any metric sees its images.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data import SynthBirds
from ..data.composition import SPLITS, UNSEEN_SPLIT_SIZE, unseen_split
from .evaluator import EvaluatorConfig
from .alignment import (RPrecision, attribute_accuracy_from_predictions, embed_captions, embed_images,
                        r_precision_from_embeddings)
from .fid import fid, kid
from .prdc import density_coverage, precision_recall
from .. import zoo

ModelFn = Callable[[list[str], torch.Generator], torch.Tensor]  # captions, generator -> (B, 3, S, S) in [-1, 1]
PROTOCOL_IMAGE_SIZE = EvaluatorConfig().image_size  # what the released evaluator reads
MIN_N = 10  # the fewest test items the metrics are defined for (k-NN with k = 5, KID subsets)


def to_protocol_size(images: torch.Tensor, size: int = PROTOCOL_IMAGE_SIZE) -> torch.Tensor:
    """(B, 3, H, W) at any square size -> (B, 3, size, size): the one place generated images are resized."""
    if images.shape[-2:] == (size, size):
        return images
    if images.shape[-1] > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


@dataclass(eq=False)
class Reference:
    """N fixed test items: their real images, one caption each, and their indices in the test split.

    What the judges compute of the reference (features, caption embeddings) is computed once and kept."""

    images: torch.Tensor  # (N, 3, S, S) in [-1, 1] at the protocol's size
    captions: list[str]
    indices: torch.Tensor  # (N,) rows of the split
    species: torch.Tensor  # (N,) the species of each real image; -1 on the unseen split (no species)
    split: str = "seen"
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def features(self, judges: "Judges") -> torch.Tensor:
        """FID-SB features of the real reference images (N, D)."""
        key = ("features", id(judges.features))
        if key not in self._cache:
            self._cache[key] = judges.features.predict(self.images)[0]
        return self._cache[key]

    def caption_embeddings(self, judges: "Judges") -> torch.Tensor:
        """mini-CLIP sentence embeddings of the captions (N, D)."""
        key = ("captions", id(judges.clip))
        if key not in self._cache:
            self._cache[key] = embed_captions(judges.clip, self.captions)
        return self._cache[key]


def reference_set(n: int, seed: int = 0, test: SynthBirds | None = None, split: str = "seen") -> Reference:
    """The N items every model is evaluated on, for a given seed and split: a seeded permutation of the test split
    ("seen": one of each image's ten captions) or of the unseen-combinations split ("unseen": its one caption)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    size = UNSEEN_SPLIT_SIZE if split == "unseen" else len(test or SynthBirds("test", PROTOCOL_IMAGE_SIZE))
    if not MIN_N <= n <= size:
        what = "the unseen-combinations split" if split == "unseen" else "the test split"
        raise ValueError(f"n must be between {MIN_N} (density and coverage compare 5 neighbours) and {size} "
                         f"({what}), got {n}")
    g = torch.Generator().manual_seed(seed)
    indices = torch.randperm(size, generator=g)[:n]
    if split == "unseen":
        items = unseen_split(0, PROTOCOL_IMAGE_SIZE)  # one fixed split; the seed draws from it like from the test
        return Reference(items.image_tensor(indices), [items.captions[int(i)] for i in indices], indices,
                         torch.full((n,), -1), split)
    test = test or SynthBirds("test", image_size=PROTOCOL_IMAGE_SIZE)
    which = torch.randint(10, (n,), generator=g)
    captions = [test.captions[int(i)][int(k)] for i, k in zip(indices, which)]
    return Reference(test.image_tensor(indices), captions, indices, test.species[indices])


@torch.no_grad()
def nearest_distances(queries: torch.Tensor, points: torch.Tensor, exclude_self: bool = False,
                      chunk: int = 2048) -> torch.Tensor:
    """Euclidean distance from each query (N, D) to its nearest row of `points` (M, D): (N,)."""
    out = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start: start + chunk].double(), points.double())
        if exclude_self:
            d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")
        out.append(d.min(1).values)
    return torch.cat(out).float()


def nearest_train_ratio(fake_features: torch.Tensor, real_test_features: torch.Tensor,
                        train_features: torch.Tensor) -> float:
    """Median nearest-training-image distance of generated images over that of real test images.

    About 1: generated birds are as far from the training set as new real birds are. Well below 1: the model
    reproduces training images (memorisation). Well above 1: off the data manifold."""
    fake = nearest_distances(fake_features, train_features).median()
    real = nearest_distances(real_test_features, train_features).median()
    return float(fake / real)


@dataclass
class EvalResult:
    """All metrics of one evaluation, JSON-serialisable with `to_dict`."""

    n: int
    seed: int
    fid_sb: float
    kid: float
    kid_std: float
    precision: float
    recall: float
    density: float
    coverage: float
    attribute_accuracy: float
    attribute_accuracy_per_group: dict[str, float]
    r_precision: float
    nearest_train_ratio: float
    judge_attribute_accuracy: float | None = None  # by the second judge, when it is released
    judge_attribute_accuracy_per_group: dict[str, float] | None = None
    split: str = "seen"
    parameters: int | None = None
    images_per_second: float | None = None
    batch_size: int | None = None
    threads: int | None = None
    device: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


FEATURES, EVALUATOR, SECOND_JUDGE = "fid-birds", "evaluator-birds", "attribute-judge-birds"
JUDGES_AGREE = 0.05  # largest gap between the two judges' attribute accuracies that is not flagged


class Judges(NamedTuple):
    """The frozen models of the protocol, with features of the real data they compare against.

    `features` (fid-birds, trained on the species' clean images) defines FID-SB, precision/recall, coverage and
    the memorisation check; `evaluator` and `attribute_judge`, trained to read each part of any bird, judge the
    attributes."""

    features: torch.nn.Module
    clip: torch.nn.Module
    train_features: torch.Tensor  # FID-SB features of all real training images
    evaluator: torch.nn.Module  # the first attribute judge (a BirdEvaluator: predict -> (features, species, attributes))
    attribute_judge: torch.nn.Module | None = None  # the second, independent attribute judge (metrics.judge)


_JUDGES: dict[str, Judges] = {}


def load_judges(device: str = "cpu") -> Judges:
    """The released `fid-birds`, `clip-birds`, `evaluator-birds` and (once released) the second attribute judge,
    and training-set features (cached per process)."""
    if device not in _JUDGES:
        features = zoo.load(FEATURES, device=device)
        clip = zoo.load("clip-birds", device=device)
        train = SynthBirds("train", image_size=features.cfg.image_size)
        train_features, _, _ = features.predict(train.image_tensor())
        evaluator = zoo.load(EVALUATOR, device=device)
        judge = zoo.load(SECOND_JUDGE, device=device) if SECOND_JUDGE in zoo.available() else None
        _JUDGES[device] = Judges(features, clip, train_features, evaluator, judge)
    return _JUDGES[device]


def score_images(images: torch.Tensor, reference: Reference, judges: Judges, seed: int = 0) -> dict:
    """Every quality and alignment metric of `images` (N, 3, S, S), generated for `reference.captions`."""
    if images.shape != reference.images.shape:
        raise ValueError(f"expected images of shape {tuple(reference.images.shape)}, got {tuple(images.shape)}")
    fake_features = judges.features.predict(images)[0]
    predicted = judges.evaluator.predict(images)[2]
    real_features = reference.features(judges)
    pr = precision_recall(real_features, fake_features, k=3)
    dc = density_coverage(real_features, fake_features, k=5)
    kid_result = kid(real_features, fake_features, subset_size=min(1000, len(images)), seed=seed)
    alignment = attribute_accuracy_from_predictions(predicted, reference.captions)
    rp = alignment_r_precision(images, reference, judges, seed)
    return {
        "fid_sb": fid(real_features, fake_features), "kid": kid_result.mean, "kid_std": kid_result.std,
        "precision": pr.precision, "recall": pr.recall, "density": dc.density, "coverage": dc.coverage,
        "attribute_accuracy": alignment.accuracy, "attribute_accuracy_per_group": alignment.per_group,
        "r_precision": rp.r_precision,
        "nearest_train_ratio": nearest_train_ratio(fake_features, real_features, judges.train_features),
        **second_judge_scores(images, reference.captions, judges),
    }


def second_judge_scores(images: torch.Tensor, captions: list[str], judges: Judges) -> dict:
    """Attribute accuracy by the second judge (empty without one): it should agree with the evaluator's within a
    few points (`JUDGES_AGREE`); where it does not, one of them is being fooled."""
    if judges.attribute_judge is None:
        return {}
    second = attribute_accuracy_from_predictions(judges.attribute_judge.predict(images), captions)
    return {"judge_attribute_accuracy": second.accuracy, "judge_attribute_accuracy_per_group": second.per_group}


def judges_disagree(metrics: dict) -> str | None:
    """A warning when the two judges' attribute accuracies differ by more than `JUDGES_AGREE`, else None."""
    if metrics.get("judge_attribute_accuracy") is None:  # measured without a second judge
        return None
    gap = metrics["attribute_accuracy"] - metrics["judge_attribute_accuracy"]
    if round(abs(gap), 9) <= JUDGES_AGREE:  # a gap of exactly the tolerance is not flagged
        return None
    return (f"the judges disagree: attribute accuracy {metrics['attribute_accuracy']:.1%} by {EVALUATOR} but "
            f"{metrics['judge_attribute_accuracy']:.1%} by {SECOND_JUDGE} ({100 * gap:+.1f} points); read both")


def warn_if_judges_disagree(metrics: dict) -> None:
    """Say so, on stderr, when the two judges disagree on either split (`judges_disagree`)."""
    for split, values in (("seen", metrics), ("unseen", metrics.get("unseen") or {})):
        warning = judges_disagree(values) if values else None
        if warning:
            print(f"WARNING ({split} split): {warning}", file=sys.stderr)


def alignment_r_precision(images: torch.Tensor, reference: Reference, judges: Judges, seed: int = 0) -> RPrecision:
    """R-precision of images for the reference captions, distractors from the other reference captions."""
    text_emb = reference.caption_embeddings(judges)
    return r_precision_from_embeddings(embed_images(judges.clip, images), text_emb, text_emb,
                                       torch.arange(len(images)), num_distractors=min(99, len(images) - 1),
                                       seed=seed)


@torch.no_grad()
def generate(model_fn: ModelFn, captions: list[str], seed: int = 0, batch_size: int = 100,
             progress: bool = True) -> tuple[torch.Tensor, float]:
    """Images for `captions` at the protocol's size, batch b drawn with a generator seeded by (seed, b); returns
    images and the seconds spent drawing them (resizing excluded)."""
    images, seconds = [], 0.0
    for b, start in enumerate(tqdm(range(0, len(captions), batch_size), desc="generating", disable=not progress)):
        g = torch.Generator().manual_seed(seed * 100_003 + b)
        t0 = time.perf_counter()
        out = model_fn(captions[start: start + batch_size], g)
        seconds += time.perf_counter() - t0
        images.append(to_protocol_size(out.detach().float().cpu().clamp(-1, 1)))
    return torch.cat(images), seconds


def evaluate(model_fn: ModelFn, n: int = 1000, seed: int = 0, batch_size: int = 100, parameters: int | None = None,
             device: str = "cpu", progress: bool = True, split: str = "seen") -> EvalResult:
    """Generate N images for the fixed captions of (N, seed, split) and measure them against the real ones."""
    reference = reference_set(n, seed, split=split)  # checked before the judges load
    judges = load_judges(device)
    images, seconds = generate(model_fn, reference.captions, seed, batch_size, progress)
    return EvalResult(n=n, seed=seed, **score_images(images, reference, judges, seed), parameters=parameters,
                      images_per_second=n / seconds if seconds > 0 else None, batch_size=batch_size,
                      threads=torch.get_num_threads(), device=device, split=split)


def evaluate_splits(model_fn: ModelFn, n: int = 2000, seed: int = 0, **kwargs) -> dict:
    """`evaluate` on both splits: the seen split's metrics, with the unseen split's under "unseen" (at N or the
    unseen split's size, whichever is smaller), and the sha256 of each judge under "judges"."""
    seen = evaluate(model_fn, n, seed, **kwargs).to_dict()
    unseen = evaluate(model_fn, min(n, UNSEEN_SPLIT_SIZE), seed, split="unseen", **kwargs).to_dict()
    return seen | {"unseen": unseen, "judges": judge_versions()}


def judge_versions() -> dict[str, str]:
    """The sha256 of each released model the protocol measures with: a retrained judge changes the numbers."""

    names = (FEATURES, EVALUATOR, "clip-birds", SECOND_JUDGE)
    return {name: zoo.load_card(name)["sha256"] for name in names if name in zoo.available()}


Corruption = Literal["blur", "noise"]


def corrupt(images: torch.Tensor, kind: Corruption, strength: float, seed: int = 0) -> torch.Tensor:
    """Degrade real images for the sanity rows: Gaussian blur (sigma in pixels) or additive Gaussian noise (std)."""
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if strength == 0:
        return images.clone()
    if kind == "noise":
        g = torch.Generator().manual_seed(seed)
        return (images + strength * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    if kind == "blur":
        radius = max(1, int(3 * strength + 0.5))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (x / strength) ** 2)
        kernel = (kernel / kernel.sum()).to(images.dtype)
        c = images.shape[1]
        padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
        out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    raise ValueError(f"kind must be 'blur' or 'noise', got {kind!r}")
