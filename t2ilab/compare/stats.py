"""Two small statistics the comparison and its chapters use: rank agreement of two rulers, and a line in
log-steps through a budget curve."""
from __future__ import annotations

import math


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of two lists without ties: 1 - 6 sum d^2 / (n (n^2 - 1)), d the rank differences
    (how far two rulers agree on an ordering; benchmarks/evaluator_robustness.py)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two lists of the same length >= 2, got {len(a)} and {len(b)}")

    def ranks(xs: list[float]) -> list[int]:
        order = sorted(range(len(xs)), key=xs.__getitem__)
        rank = [0] * len(xs)
        for r, i in enumerate(order):
            rank[i] = r
        return rank

    ra, rb, n = ranks(a), ranks(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def log_fit(steps: list[float], accuracy: list[float]) -> tuple[float, float]:
    """Least-squares line accuracy = a * log2(steps) + b: (a, b); a is the accuracy gained per doubling."""
    if len(set(steps)) < 2:
        raise ValueError("a budget curve needs runs at two budgets at least")
    x = [math.log2(s) for s in steps]
    mx, my = sum(x) / len(x), sum(accuracy) / len(accuracy)
    a = sum((xi - mx) * (yi - my) for xi, yi in zip(x, accuracy)) / sum((xi - mx) ** 2 for xi in x)
    return a, my - a * mx
