"""Budget curves: what more training buys (the records of benchmarks/budget.py), and the effect of one lever
against the plain preset at equal compute."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from .plan import judge_versions
from .stats import log_fit
from .. import zoo


@dataclasses.dataclass(frozen=True)
class BudgetCurve:
    """One record of `benchmarks/budget.py`: a preset retrained from scratch at several budgets, each run measured
    on the same N test captions; with the released model as the last point where its card holds the same
    measurement. `varied` names the settings changed from the preset (empty for the preset itself)."""

    name: str
    record: dict

    @property
    def preset(self) -> str:
        return self.record["preset"]

    @property
    def family(self) -> str:
        return self.record["family"]

    @property
    def varied(self) -> dict:
        return self.record.get("varied", {})

    @property
    def points(self) -> list[dict]:
        released = [self.record["released"]] if self.record.get("released") else []
        return sorted(self.record["runs"] + released, key=lambda r: r["steps"])

    @property
    def read_by_todays_judges(self) -> bool:
        """Whether every point was measured by the judges released today (their sha256 recorded with the point);
        points of records made before the judges were retrained carry none and read on the old judges' scale."""
        current = judge_versions()
        return all(p.get("judges") == current for p in self.points)

    @property
    def seconds_per_step(self) -> float:
        """The least-contended training time per step over the curve's runs: another job on the same cores only ever
        slows a run, so the fastest one is the machine's rate."""
        return min(p["train_wall_seconds"] / p["steps"] for p in self.points)

    @property
    def minutes(self) -> list[float]:
        """Each point's training CPU-minutes at that rate (the x axis of the budget plot)."""
        return [p["steps"] * self.seconds_per_step / 60 for p in self.points]

    @property
    def line(self) -> tuple[float, float] | None:
        """The fitted line accuracy = a * log2(steps) + b as (a, b); None for a record of one budget (a lever
        measured at one point)."""
        if len({p["steps"] for p in self.points}) < 2:
            return None
        return log_fit([p["steps"] for p in self.points], [p["attribute_accuracy"] for p in self.points])

    @property
    def per_doubling(self) -> float | None:
        """Attribute accuracy gained per doubling of the training steps (a fraction: 0.03 is 3 points)."""
        return None if self.line is None else self.line[0]

    @property
    def last_per_doubling(self) -> float | None:
        """The slope of the last segment alone (per doubling): above `per_doubling`, the curve is still steepening
        at its largest budget; below, it is flattening towards a ceiling. None for a record of one budget."""
        if self.line is None:
            return None
        a, b = self.points[-2:]
        return (b["attribute_accuracy"] - a["attribute_accuracy"]) / math.log2(b["steps"] / a["steps"])

    def minutes_to_reach(self, accuracy: float) -> float | None:
        """Training CPU-minutes at which the fitted line reaches `accuracy`, at `seconds_per_step`; None where the
        curve does not rise. An extrapolation: it assumes the line stays straight in log-steps, which a curve
        bending towards a ceiling does not."""
        if self.line is None or self.line[0] <= 0:
            return None
        a, b = self.line
        return 2 ** ((accuracy - b) / a) * self.seconds_per_step / 60

    def verdict(self, target: float) -> str:
        """One line for a chapter: the measured points, the slope, and where its line would reach `target`."""
        runs = ", ".join(f"{p['attribute_accuracy']:.0%} at {m:.0f} min" for p, m in zip(self.points, self.minutes))
        judges = "" if self.read_by_todays_judges else ", read by the judges before their retraining"
        if self.per_doubling is None:
            return f"{self.name} (N={self.record['n']}{judges}): {runs}; one budget, no slope"
        line = f"budget curve of {self.name} (N={self.record['n']}{judges}): {runs}; " \
               f"{100 * self.per_doubling:+.1f} points per doubling of training " \
               f"({100 * self.last_per_doubling:+.1f} over the last segment)"
        minutes = self.minutes_to_reach(target)
        if minutes is None:
            return line + f"; it does not rise, so more of the same training would not reach {target:.0%}"
        hours = f"{minutes / 60:,.1f}" if minutes < 600 else f"{minutes / 60:,.0f}"
        return line + f"; on that line {target:.0%} needs about {hours} CPU-hours " \
                      "(an extrapolation: a curve that bends towards a ceiling needs more)"


@dataclasses.dataclass(frozen=True)
class LeverEffect:
    """One lever against the plain preset at the same training steps and N (`lever_effects`)."""

    steps: int
    varied: dict
    with_lever: dict  # the budget point of the varied run
    without: dict  # the plain run's point at the same steps
    noise: float  # two standard errors of a difference of two attribute accuracies at this N (worst case p = 0.5)

    @property
    def gain(self) -> float:
        return self.with_lever["attribute_accuracy"] - self.without["attribute_accuracy"]

    @property
    def side_effects(self) -> list[str]:
        """What the lever did to realism and coverage, where it is large enough to name: FID-SB moved by more
        than a quarter, recall or coverage by more than 0.1."""
        a, b, out = self.with_lever, self.without, []
        if not 0.8 <= a["fid_sb"] / b["fid_sb"] <= 1.25:
            out.append(f"FID-SB {b['fid_sb']:.0f} -> {a['fid_sb']:.0f}")
        out += [f"{key} {b[key]:.2f} -> {a[key]:.2f}" for key in ("recall", "coverage") if abs(a[key] - b[key]) > 0.1]
        return out

    @property
    def verdict(self) -> str:
        """On attribute accuracy ("helps", "hurts" or "within noise"), with any large change of realism or coverage
        named beside it: a lever can leave accuracy inside the noise while it doubles FID-SB."""
        lever = ", ".join(f"{k}={v}" for k, v in self.varied.items())
        if abs(self.gain) < self.noise:
            head = f"{lever}: attribute accuracy within noise"
        else:
            head = f"{lever} {'helps' if self.gain > 0 else 'hurts'} attribute accuracy"
        return head + (f", but {', '.join(self.side_effects)}" if self.side_effects else "")

    def line(self) -> str:
        a, b = self.with_lever, self.without
        return (f"{self.steps} steps, with against without: attribute accuracy {a['attribute_accuracy']:.1%} vs "
                f"{b['attribute_accuracy']:.1%} ({100 * self.gain:+.1f} points; two standard errors: "
                f"{100 * self.noise:.1f}), FID-SB {a['fid_sb']:.0f} vs {b['fid_sb']:.0f}, recall {a['recall']:.2f} vs "
                f"{b['recall']:.2f}, coverage {a['coverage']:.2f} vs {b['coverage']:.2f}")


def lever_effects(plain: BudgetCurve, varied: BudgetCurve) -> list[LeverEffect]:
    """A lever's record (`budget.py --vary`) against the preset's own, at every training budget both measured.
    The released model is never a point of a varied record, so only runs retrained from scratch are paired."""
    if varied.preset != plain.preset or plain.varied or not varied.varied:
        raise ValueError(f"compare a varied record of a preset with that preset's plain record, got {varied.name} "
                         f"against {plain.name}")
    if varied.record["n"] != plain.record["n"]:
        raise ValueError(f"the records were measured at different N ({varied.record['n']} and {plain.record['n']})")
    n = varied.record["n"]
    noise = 2 * math.sqrt(2 * 0.5 * 0.5 / n)
    by_steps = {p["steps"]: p for p in plain.record["runs"]}
    return [LeverEffect(p["steps"], varied.varied, p, by_steps[p["steps"]], noise)
            for p in sorted(varied.record["runs"], key=lambda r: r["steps"]) if p["steps"] in by_steps]


def budget_curves(folder: str | os.PathLike | None = None) -> dict[str, BudgetCurve]:
    """Every budget record under `zoo.results_dir()` (or `folder`), by name: "dalle-birds32",
    "dfgan-birds32-diffaugment=true", ..."""

    folder = Path(folder) if folder else zoo.results_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of benchmark records at {folder} (set $T2ILAB_RESULTS to a copy of the "
                                f"repository's benchmarks/results)")
    curves = {}
    for path in sorted(folder.glob("budget_*.json")):
        name = path.stem.removeprefix("budget_")
        curves[name] = BudgetCurve(name, json.loads(path.read_text()))
    return curves
