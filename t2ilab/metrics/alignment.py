"""Text-image alignment: attribute accuracy (with the bird evaluator) and CLIP R-precision (with mini-CLIP).

Chapter "How we measure text-to-image models".
- Attribute accuracy: of the attributes a caption states (read by `parse_attributes`), the share the evaluator
  finds in the image. Exact on SynthBirds, where the parser inverts every caption.
- R-precision (Xu et al., 2018, AttnGAN): rank the image's own caption among itself and 99 captions of other
  images by CLIP cosine similarity; the score is the share of images whose own caption comes first.
"""
from __future__ import annotations

import collections
import math
from typing import NamedTuple

import torch

from ..clip import embed_captions, embed_images  # noqa: F401 (where the metrics read them)
from ..data.attributes import BIRD_GROUPS
from ..data.captions import parse_attributes


class AttributeAccuracy(NamedTuple):
    accuracy: float  # over all stated attributes
    per_group: dict[str, float]  # accuracy per attribute group (NaN-free: groups never stated are left out)
    stated: int  # number of stated attributes checked


def attribute_accuracy(images: torch.Tensor, captions: list[str], evaluator) -> AttributeAccuracy:
    """Share of the attributes stated by `captions[i]` that the evaluator sees in `images[i]` (B, 3, S, S), at the
    evaluator's size S."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    return attribute_accuracy_from_predictions(evaluator.predict(images)[2], captions)


def attribute_accuracy_from_predictions(predicted: torch.Tensor, captions: list[str]) -> AttributeAccuracy:
    """As `attribute_accuracy`, from the evaluator's predicted value indices (B, groups)."""
    if len(predicted) != len(captions):
        raise ValueError(f"{len(predicted)} predictions but {len(captions)} captions")
    groups = list(BIRD_GROUPS)
    hits: dict[str, list[int]] = {g: [0, 0] for g in groups}
    for row, caption in zip(predicted.tolist(), captions):
        for group, value in parse_attributes(caption).items():
            j = groups.index(group)
            hits[group][0] += int(BIRD_GROUPS[group][row[j]] == value)
            hits[group][1] += 1
    total = sum(n for _, n in hits.values())
    if total == 0:
        raise ValueError("the captions state no attributes the parser knows; attribute accuracy is undefined")
    per_group = {g: h / n for g, (h, n) in hits.items() if n}
    return AttributeAccuracy(sum(h for h, _ in hits.values()) / total, per_group, total)


def draw_distractors(n: int, pool_size: int, k: int, seed: int = 0,
                     pool_owner: torch.Tensor | None = None) -> torch.Tensor:
    """(n, k) pool indices; with `pool_owner`, row i never picks a pool entry owned by image i."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(pool_size, (n, k), generator=g)
    if pool_owner is not None:
        bad = pool_owner[picks] == torch.arange(n)[:, None]
        while bad.any():
            picks[bad] = torch.randint(pool_size, (int(bad.sum()),), generator=g)
            bad = pool_owner[picks] == torch.arange(n)[:, None]
    return picks


class RPrecision(NamedTuple):
    r_precision: float
    distractors: int
    trials: int


def r_precision_from_embeddings(image_emb: torch.Tensor, text_emb: torch.Tensor, pool_emb: torch.Tensor,
                                pool_owner: torch.Tensor | None = None, num_distractors: int = 99,
                                seed: int = 0) -> RPrecision:
    """image_emb[i] against text_emb[i] (its caption) and `num_distractors` rows of `pool_emb` drawn at random.

    `pool_owner[j]`, if given, is the index i of the image that pool row j describes; those rows are never
    drawn as distractors of image i. Ties count against the true caption."""
    n = len(image_emb)
    if len(text_emb) != n:
        raise ValueError(f"{n} images but {len(text_emb)} true captions")
    picks = draw_distractors(n, len(pool_emb), num_distractors, seed, pool_owner)
    true_score = (image_emb * text_emb).sum(-1)  # (N,)
    distractor_score = torch.einsum("nd,nkd->nk", image_emb, pool_emb[picks])  # (N, K)
    first = (true_score[:, None] > distractor_score).all(1)
    return RPrecision(float(first.float().mean()), num_distractors, n)


def r_precision(images: torch.Tensor, captions: list[str], clip, pool: list[str],
                pool_owner: torch.Tensor | None = None, num_distractors: int = 99, seed: int = 0) -> RPrecision:
    """CLIP R-precision of images (B, 3, S, S) with their captions, distractors drawn from `pool` captions."""
    return r_precision_from_embeddings(embed_images(clip, images), embed_captions(clip, captions),
                                       embed_captions(clip, pool), pool_owner, num_distractors, seed)


def unambiguous_share(true_attributes: list[dict[str, str]], captions: list[str], pool: list[str],
                      num_distractors: int = 99, seed: int = 0, pool_owner: torch.Tensor | None = None) -> float:
    """Share of R-precision trials in which no distractor caption is also true of the image.

    Captions state only 3-6 attributes, so a distractor written for another bird can describe this one as well
    (always so for another image of the same species). An encoder that ranks all true captions equally cannot
    beat this share; it puts R-precision in context. Same draws as `r_precision_from_embeddings` with `seed`."""
    n = len(captions)
    picks = draw_distractors(n, len(pool), num_distractors, seed, pool_owner)
    stated = [parse_attributes(c) for c in pool]
    clear = 0
    for i in range(n):
        truth = true_attributes[i].items()
        clear += not any(stated[j].items() <= truth for j in picks[i].tolist())
    return clear / n


def oracle_r_precision(true_attributes: list[dict[str, str]], captions: list[str], pool: list[str],
                       num_distractors: int = 99, seed: int = 0, pool_owner: torch.Tensor | None = None) -> float:
    """R-precision of an oracle that sees every attribute of the image exactly (same draws as `r_precision`).

    It scores a caption by the pointwise mutual information of what it states, sum_g -log p(value_g), if every
    stated attribute is true of the image, and minus infinity otherwise; ties count against the true caption.
    Captions state only 3-6 of 8 attributes, so a distractor can be just as true as the image's own caption: no
    text encoder can be expected to beat this ceiling by more than luck."""
    n = len(captions)
    picks = draw_distractors(n, len(pool), num_distractors, seed, pool_owner)
    counts = collections.defaultdict(collections.Counter)
    for attrs in true_attributes:
        for group, value in attrs.items():
            counts[group][value] += 1

    def pmi(stated: dict[str, str], truth: dict[str, str]) -> float:
        if not stated.items() <= truth.items():
            return -math.inf
        return sum(-math.log(counts[g][v] / len(true_attributes)) for g, v in stated.items())

    stated_pool = [parse_attributes(c) for c in pool]
    wins = 0
    for i in range(n):
        own = pmi(parse_attributes(captions[i]), true_attributes[i])
        wins += all(own > pmi(stated_pool[j], true_attributes[i]) for j in picks[i].tolist())
    return wins / n
