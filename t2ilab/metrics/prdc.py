"""Precision, recall, density and coverage: fidelity and diversity as separate numbers, from k-NN balls.

Chapter "How we measure text-to-image models". FID-SB mixes "are the samples good?" with "do they cover the
data?"; these metrics split the two. Each point gets a ball whose radius is the distance to its k-th nearest
*other* point of its own set, and the union of the balls is a non-parametric estimate of that set's support.

- Precision and recall (Kynkaanniemi et al., 2019, "Improved Precision and Recall Metric for Assessing
  Generative Models", Sec. 2): precision is the share of fake points inside at least one real ball, recall the
  share of real points inside at least one fake ball.
- Density and coverage (Naeem et al., 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
  Sec. 3): density counts how many real balls hold each fake point, normalised by k so that it is about 1 when
  the sets match and outliers in the real set do not inflate it,

      density  = 1 / (k M) * sum_j sum_i 1[fake_j in B(real_i, r_i)],
      coverage = 1 / N     * sum_i 1[exists j: fake_j in B(real_i, r_i)],

  and coverage uses only real balls, so one odd fake sample cannot claim a whole region.

Balls are closed (distance <= radius), as in Kynkaanniemi et al.'s definition; the `prdc` reference code uses
strict inequality, which differs only on exact ties. Distances are Euclidean, computed in float64 with
`torch.cdist`, a block of rows at a time, so 10k x 10k feature sets fit in memory.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import torch

from .fid import validate_features

ROWS_PER_BLOCK = 2048  # (2048, 10_000) float64 distances are 160 MB


class PrecisionRecall(NamedTuple):
    precision: float  # share of fake points inside the real support, in [0, 1]
    recall: float  # share of real points inside the fake support, in [0, 1]


class DensityCoverage(NamedTuple):
    density: float  # >= 0, about 1 when fake matches real, above 1 when fakes crowd dense real regions
    coverage: float  # share of real balls holding at least one fake point, in [0, 1]


def _distance_blocks(queries: torch.Tensor, points: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """Rows of queries (Q, D) against points (P, D) -> (rows, distances (rows, P)), ROWS_PER_BLOCK rows at a time."""
    for start in range(0, queries.shape[0], ROWS_PER_BLOCK):
        rows = slice(start, min(start + ROWS_PER_BLOCK, queries.shape[0]))
        yield rows, torch.cdist(queries[rows], points)


def knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Points (N, D) float64 -> distance of each to its k-th nearest other point (N,); needs 1 <= k <= N - 1."""
    if not 1 <= k <= points.shape[0] - 1:
        raise ValueError(f"k must be in [1, N - 1] = [1, {points.shape[0] - 1}] for a set of {points.shape[0]} points, "
                         f"got {k}")
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    for rows, distances in _distance_blocks(points, points):
        block_size = rows.stop - rows.start
        # A point is not its own neighbour: mask the diagonal of this block instead of dropping the smallest
        # distance, so duplicated points still count as neighbours at distance 0.
        own = torch.arange(block_size, device=points.device)
        distances[own, own + rows.start] = float("inf")
        radii[rows] = distances.kthvalue(k, dim=1).values
    return radii


def _share_inside_any_ball(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of queries (Q, D) within distance radii (C,) of at least one of centres (C, D), in [0, 1]."""
    inside = 0
    for _, distances in _distance_blocks(queries, centres):
        inside += int((distances <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of fake (M, D) against real (N, D) features, both in [0, 1]."""
    real, fake = validate_features(real, fake, names=("real", "fake"))
    # 1. Support of each set: the union of its k-NN balls (Kynkaanniemi et al. 2019, Sec. 2).
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    # 2. Precision: fake samples that land in the real support; recall: real samples in the fake support.
    precision = _share_inside_any_ball(fake, real, real_radii)
    recall = _share_inside_any_ball(real, fake, fake_radii)
    return PrecisionRecall(precision=precision, recall=recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> DensityCoverage:
    """Density (>= 0, ~1 for matching sets) and coverage (in [0, 1]) of fake (M, D) against real (N, D) features."""
    real, fake = validate_features(real, fake, min_rows=1, names=("real", "fake"))
    if real.shape[0] < 2:
        raise ValueError(f"real needs at least 2 rows for k-NN radii, got {real.shape[0]}")
    # 1. Balls around real points only (Naeem et al. 2020, Sec. 3).
    real_radii = knn_radii(real, k)  # (N,)
    # 2. Density: for each fake point, how many real balls contain it; summed, divided by k M.
    balls_holding_fake = 0
    for _, distances in _distance_blocks(fake, real):  # (rows, N)
        balls_holding_fake += int((distances <= real_radii[None, :]).sum())
    density = balls_holding_fake / (k * fake.shape[0])
    # 3. Coverage: real balls whose nearest fake point lies inside.
    covered = 0
    for rows, distances in _distance_blocks(real, fake):  # (rows, M)
        covered += int((distances.min(dim=1).values <= real_radii[rows]).sum())
    coverage = covered / real.shape[0]
    return DensityCoverage(density=density, coverage=coverage)
