"""Every released generator under one protocol, in one run (chapters "Comparing the families" and "The generative
trilemma"; command `t2ilab compare`).

One run measures each generator on the same test captions with the same seeds, the same N, the same judges and the
same number of threads (the generators, and the unconditional U-Net guided by each released judge), and adds what
a comparison of cost needs beside quality: parameters, network evaluations
per image, images per second at batch 100, the peak memory of sampling one batch of 100, and the training time its
card recorded. Each generator's quality-speed knob is swept in the same run (DDIM steps and guidance scale for
diffusion, temperature, top-k and guidance for the token models, truncation for the GANs) and every setting is kept
as a point of the trilemma.

Each point is cached under a key made of the model's sha256 and every protocol setting, so a second run reads what
the first measured, and a re-released model (a new sha256) or a changed setting is measured again. A model that
fails to load or to draw is reported in its row; the rest of the run goes on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

# the knob values swept per sampling option (each point changes one option from the model's defaults)
KNOBS: dict[str, tuple] = {
    "steps": (10, 25, 50, 1000),
    "guidance_scale": (1.0, 3.0, 6.0),
    "temperature": (0.7, 1.0),
    "top_k": (0, 32),
    "truncation": (0.5, 0.7, 1.0),
}
SLOW_NFE = 400  # points that take more network evaluations per image than this are measured at the slow N
QUALITY = ("fid_sb", "kid", "precision", "recall", "density", "coverage", "attribute_accuracy",
           "judge_attribute_accuracy", "r_precision", "nearest_train_ratio")
DDPM_STEPS = 1000  # every released U-Net's schedule (diffusion.schedules.get_schedule's default T)
PROTOCOL_VERSION = 2  # bump when the measurement itself changes, so that old cached points are not reused
UNSEEN = ("attribute_accuracy", "judge_attribute_accuracy", "fid_sb", "coverage", "r_precision")  # per split


@dataclasses.dataclass(frozen=True)
class Point:
    """One measurement: a released model, sampling options that differ from its defaults, and the N to use."""

    model: str
    options: tuple[tuple[str, Any], ...]  # sorted (name, value) pairs; () for the model's defaults
    n: int
    kind: str  # "main" (the table) or "sweep" (a knob setting)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options) or "defaults"


def network_evaluations(recipe, options) -> int:
    """Forward passes of the generator's network per image (a guided pass over a doubled batch counts two).

    Diffusion: one per sampler step (DDPM takes every step of the schedule), doubled by classifier-free guidance
    at scales other than 0 and 1. Token models: one per image token, doubled by guidance, times the reranking's
    draws. DDGAN: one per denoising step; the other GANs: one."""
    family = recipe.family
    if recipe.role == "judge":  # DDIM on the unconditional U-Net, plus the judge's gradient at every step
        return 2 * options.steps
    guided = getattr(options, "guidance_scale", 1.0) not in (0.0, 1.0)
    if family == "diffusion":
        steps = options.steps if options.sampler == "ddim" else DDPM_STEPS
        return steps * (2 if guided else 1)
    if family == "autoregressive":
        tokens = getattr(recipe.model_config, "image_tokens", 64)
        return tokens * (2 if guided else 1) * getattr(options, "rerank", 1)
    return getattr(recipe.model_config, "num_timesteps", 1)


def plan(models: list[str], n: int, sweep_n: int, slow_n: int, sweeps: bool = True) -> list[Point]:
    """The points of a run: each model's defaults at N, and each knob value at the sweep N (at the slow N where a
    setting costs more than SLOW_NFE network evaluations per image)."""
    from .recipes import get_preset

    points = []
    for name in models:
        points.append(Point(name, (), n, "main"))
        recipe = get_preset(name)
        if not sweeps:
            continue
        if recipe.role != "generator":  # a guided sampler: its defaults at the sweep N, beside the knob curves
            points.append(Point(name, (), sweep_n, "sweep"))
            continue
        defaults = recipe.options(None)
        if defaults is None:
            continue
        seen = set()
        for field in dataclasses.fields(defaults):
            for value in KNOBS.get(field.name, ()):
                options = recipe.options({field.name: value})
                changed = tuple((f.name, getattr(options, f.name)) for f in dataclasses.fields(options)
                                if getattr(options, f.name) != getattr(defaults, f.name))
                if changed in seen:  # the default value of several knobs is one point
                    continue
                seen.add(changed)
                cost = network_evaluations(recipe, options)
                points.append(Point(name, changed, slow_n if cost > SLOW_NFE else sweep_n, "sweep"))
    return points


def cache_key(point: Point, sha256: str, seed: int, threads: int, device: str, judges: dict[str, str]) -> str:
    settings = {"model": point.model, "sha256": sha256, "options": [list(o) for o in point.options], "n": point.n,
                "seed": seed, "threads": threads, "device": device, "judges": judges, "batch": 100,
                "version": PROTOCOL_VERSION}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def sampling_memory_mb(text_to_image, captions: list[str], device: str) -> float | None:
    """Peak memory of drawing one batch, above what the process held before it: on a GPU the allocator's peak,
    on Linux the resident set's high-water mark (reset through /proc/self/clear_refs first); None elsewhere."""
    g = torch.Generator().manual_seed(0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        text_to_image(captions, g)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        before = _status_kb("VmRSS")
        text_to_image(captions, g)
        return (_status_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def measure(point: Point, seed: int, device: str) -> dict[str, Any]:
    """The protocol's metrics of one point, plus its network evaluations per image."""
    from . import zoo
    from .recipes import get_preset

    recipe = get_preset(point.model)
    options = recipe.options(dict(point.options))
    model = zoo.load(point.model, device=device)
    if recipe.role == "judge":  # the sampler it makes of the model it guides
        metrics = recipe.guided_metrics(model, point.n, seed, options)
    else:
        metrics = recipe.evaluate(model, n=point.n, seed=seed, options=options)
    return metrics | {"network_evaluations": network_evaluations(recipe, options)}


def memory_in_fresh_process(model: str, seed: int, device: str, threads: int) -> float | None:
    """`sampling_memory_mb` of one batch of 100 of `model` at its defaults, in a fresh Python process: in this one,
    memory freed by earlier points would be reused and hide what sampling needs."""
    import subprocess
    import sys

    script = ("import json, sys, torch; from t2ilab import compare, zoo; from t2ilab.recipes import get_preset; "
              "from t2ilab.metrics.protocol import reference_set; torch.set_num_threads(int(sys.argv[4])); "
              "name, seed, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]; r = get_preset(name); "
              "draw = r.text_to_image(zoo.load(name, device=device), None, device); "
              "captions = reference_set(100, seed).captions; draw(captions[:2], torch.Generator().manual_seed(0)); "
              "print(json.dumps(compare.sampling_memory_mb(draw, captions, device)))")
    out = subprocess.run([sys.executable, "-c", script, model, str(seed), device, str(threads)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"memory measurement of {model} failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def judge_versions() -> dict[str, str]:
    """The sha256 of each judge the protocol uses: a retrained judge invalidates every cached point."""
    from .metrics.protocol import judge_versions as versions

    return versions()


def released_generators(guided: bool = True) -> list[str]:
    """The released models that draw: the generators, then (with `guided`) the judges whose guidance turns the
    unconditional U-Net into a text-to-image sampler (classifier and CLIP guidance)."""
    from . import zoo
    from .recipes import PRESETS

    roles = ("generator", "judge") if guided else ("generator",)
    names = [name for name in zoo.available() if name in PRESETS and PRESETS[name].role in roles]
    return sorted(names, key=lambda name: roles.index(PRESETS[name].role))


def run(models: list[str] | None = None, n: int = 2000, sweep_n: int = 300, slow_n: int = 50, seed: int = 0,
        threads: int | None = None, device: str = "cpu", cache_dir: str | os.PathLike | None = None,
        sweeps: bool = True, progress: bool = True, memory: bool = True, lookups: bool = True) -> dict[str, Any]:
    """Measure every point of `plan(...)` (cached ones are read back) and return the comparison as a dict: the
    settings, one row per model (its main point with card facts) and every point. `memory` adds the sampling
    memory of each main point, measured in a fresh process (so only models of the preset registry); `lookups`
    adds the lookup rows (`metrics.lookup`), measured like a main point."""
    from . import zoo
    from .data.synthbirds import t2ilab_home
    from .recipes import get_preset

    models = list(models) if models else released_generators()
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    cache = Path(cache_dir) if cache_dir else t2ilab_home() / "compare"
    cache.mkdir(parents=True, exist_ok=True)
    judges = judge_versions()
    points = plan(models, n, sweep_n, slow_n, sweeps)
    results, started = [], time.time()
    bar = tqdm(points, desc="compare", disable=not progress)
    for point in bar:
        bar.set_postfix_str(f"{point.model} {point.label} N={point.n}")
        record: dict[str, Any] = {"model": point.model, "options": dict(point.options), "label": point.label,
                                  "n": point.n, "kind": point.kind}
        try:
            card = zoo.load_card(point.model)
            key = cache_key(point, card["sha256"], seed, threads, device, judges)
            path = cache / f"{key}.json"
            record["cached"] = path.is_file()
            metrics = (json.loads(path.read_text()) if record["cached"]
                       else card_metrics(point, card, seed, threads, device, judges) or measure(point, seed, device))
            _store(path, metrics)
            if point.kind == "main" and memory:  # what sampling one batch needs, measured apart, cached apart
                memory_path = cache / f"{key}-memory.json"
                if not memory_path.is_file():
                    _store(memory_path, {"sampling_memory_mb": memory_in_fresh_process(point.model, seed, device,
                                                                                       threads)})
                metrics = metrics | json.loads(memory_path.read_text())
            record["metrics"] = metrics
        except Exception as err:  # noqa: BLE001 - one broken model is reported in its row, not a failed run
            record["error"] = f"{type(err).__name__}: {err}"[:300]
        results.append(record)
    rows = [_row(name, [r for r in results if r["model"] == name], get_preset) for name in models]
    rows += lookup_rows(n, seed, threads, device, judges, cache) if lookups else []
    return {"settings": {"n": n, "sweep_n": sweep_n, "slow_n": slow_n, "seed": seed, "threads": threads,
                         "device": device, "judges": judges, "protocol_version": PROTOCOL_VERSION},
            "machine": zoo.machine_description(device), "commit": zoo.git_commit(),
            "seconds": round(time.time() - started, 1), "rows": rows, "points": results}


def card_metrics(point: Point, card: dict[str, Any], seed: int, threads: int, device: str,
                 judges: dict[str, str]) -> dict[str, Any] | None:
    """The card's own metrics when `t2ilab evaluate --write` measured exactly this main point (defaults, same N,
    seed, threads, device, judges, both splits), so that a run after re-measuring the cards does not draw again."""
    m = card.get("metrics") or {}
    if point.kind != "main" or point.options or "unseen" not in m or m.get("judges") != judges:
        return None
    if (m.get("n"), m.get("seed"), m.get("threads"), m.get("device")) != (point.n, seed, threads, device):
        return None
    from .recipes import get_preset

    recipe = get_preset(point.model)
    return m | {"network_evaluations": network_evaluations(recipe, recipe.options(None))}


def lookup_rows(n: int, seed: int, threads: int, device: str, judges: dict[str, str], cache: Path) -> list[dict]:
    """The lookup rows (`metrics.lookup`) measured on both splits, cached under the judges' versions."""
    from .metrics.lookup import LOOKUPS, lookup
    from .metrics.protocol import evaluate_splits

    rows = []
    for name in LOOKUPS:
        settings = {"lookup": name, "n": n, "seed": seed, "threads": threads, "device": device, "judges": judges,
                    "version": PROTOCOL_VERSION}
        path = cache / f"{hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]}.json"
        if not path.is_file():
            _store(path, evaluate_splits(lookup(name), n, seed, device=device, progress=False))
        m = json.loads(path.read_text())
        rows.append({"model": name, "family": "lookup", "parameters": 0, "n": m.get("n"),
                     **{k: m.get(k) for k in QUALITY}, **unseen_columns(m)})
    return rows


def unseen_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """The unseen split's headline metrics as `unseen_<metric>` columns (None where it was not measured)."""
    unseen = metrics.get("unseen") or {}
    return {f"unseen_{k}": unseen.get(k) for k in UNSEEN}


def _store(path: Path, value: dict[str, Any]) -> None:
    if path.is_file():
        return
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, allow_nan=False))
    os.replace(tmp, path)


def _row(name: str, records: list[dict], get_preset) -> dict[str, Any]:
    """The table row of one model: its main point's metrics and the facts of its card."""
    from . import zoo

    row: dict[str, Any] = {"model": name}
    try:
        recipe = get_preset(name)
        card = zoo.load_card(name)
        parameters, seconds = card.get("parameters"), card.get("wall_seconds")
        if recipe.role == "judge":  # the sampler is the guided U-Net and its judge: count both
            guided = zoo.load_card(recipe.guided_model)
            row["guides"] = recipe.guided_model
            parameters = (parameters or 0) + guided.get("parameters", 0)
            seconds = (seconds or 0) + guided.get("wall_seconds", 0)
        row |= {"family": recipe.family, "sha256": card["sha256"], "parameters": parameters,
                "training_minutes": round(seconds / 60, 1) if seconds else None,
                "trained_on": (card.get("machine") or {}).get("gpu") or "cpu"}
    except Exception as err:  # noqa: BLE001
        row["error"] = f"{type(err).__name__}: {err}"[:300]
        return row
    main = next((r for r in records if r["kind"] == "main"), None)
    if main is None or "error" in main:
        row["error"] = main["error"] if main else "not measured"
        return row
    m = main["metrics"]
    row |= {k: m.get(k) for k in QUALITY} | unseen_columns(m)
    row |= {"network_evaluations": m.get("network_evaluations"), "images_per_second": m.get("images_per_second"),
            "sampling_memory_mb": m.get("sampling_memory_mb"), "sampling": m.get("sampling"), "n": m.get("n")}
    return row


ID = [("family", "family", "{}"), ("model", "model", "{}")]
# Three views of the same rows, each narrow enough (<= 10 columns) for the book's text column.
VIEWS = {
    "quality": ID + [("fid_sb", "FID-SB", "{:.1f}"), ("kid", "KID", "{:.3f}"), ("precision", "precision", "{:.2f}"),
                     ("recall", "recall", "{:.2f}"), ("density", "density", "{:.2f}"),
                     ("coverage", "coverage", "{:.2f}"), ("attribute_accuracy", "attr. acc.", "{:.1%}"),
                     ("r_precision", "R-prec.", "{:.1%}")],
    "composition": ID + [("attribute_accuracy", "seen: attr. acc.", "{:.1%}"),
                         ("judge_attribute_accuracy", "seen: 2nd judge", "{:.1%}"),
                         ("unseen_attribute_accuracy", "unseen: attr. acc.", "{:.1%}"),
                         ("unseen_judge_attribute_accuracy", "unseen: 2nd judge", "{:.1%}"),
                         ("unseen_fid_sb", "unseen: FID-SB", "{:.1f}"),
                         ("nearest_train_ratio", "nearest-train", "{:.2f}")],
    "cost": ID + [("parameters", "params (M)", "{:.2f}"), ("network_evaluations", "NFE/image", "{}"),
                  ("images_per_second", "images/s", "{:.1f}"), ("sampling_memory_mb", "sampling MB", "{:.0f}"),
                  ("training_minutes", "train min", "{:.1f}")],
}
VIEW_TITLES = {"quality": "Quality on the seen split", "composition": "Composition and copying",
               "cost": "Size and cost"}


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if key == "parameters":
        value = value / 1e6
    if key == "model" and "guides" in row:
        value = f"{row['guides']} guided by {value}"
    return fmt.format(value)


def table(result: dict[str, Any], columns: list[tuple[str, str, str]]) -> str:
    """The rows as one Markdown table of `columns` ((key, title, format) triples, e.g. VIEWS["cost"]); a failure
    is a row that says what went wrong."""
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in result["rows"]:
        if "error" in row:
            lines.append(f"| {row.get('family', '?')} | {row['model']} | failed: {row['error']} |"
                         + " |" * (len(columns) - 3))
        else:
            lines.append("| " + " | ".join(_cell(row, k, f) for k, _, f in columns) + " |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The comparison as Markdown: one titled table per view of VIEWS, then the settings it was measured at."""
    parts = [f"**{VIEW_TITLES[name]}**\n\n{table(result, columns)}" for name, columns in VIEWS.items()]
    return "\n\n".join(parts + [settings_note(result)])


def settings_note(result: dict[str, Any]) -> str:
    """One paragraph: what N, seed, threads and device the table was measured at, and what its columns mean."""
    s = result["settings"]
    return (f"N = {s['n']} test captions of the seen species and N = {min(s['n'], 2000)} of unseen "
            f"combinations (unseen columns), seed {s['seed']}, {s['threads']} threads on {s['device']}; lookup "
            f"rows return training images (no model); images/s at batch 100; sampling MB: peak memory of one batch "
            f"of 100 above the loaded model; train min: the card's training wall time; commit "
            f"{result['commit'][:12]}.")


def points_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured point (main and swept) as a flat record: model, family, setting, N, quality and speed."""
    from .recipes import get_preset

    out = []
    for r in result["points"]:
        if "error" in r:
            continue
        m = r["metrics"]
        out.append({"model": r["model"], "family": get_preset(r["model"]).family, "setting": r["label"],
                    "kind": r["kind"], "n": r["n"], **{k: m.get(k) for k in QUALITY},
                    "network_evaluations": m.get("network_evaluations"),
                    "images_per_second": m.get("images_per_second")})
    return out


def write(result: dict[str, Any], out_dir: str | os.PathLike, command: str) -> tuple[Path, Path]:
    """`compare.json` (settings, machine, commit, command, rows and points) and `compare.md` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"command": command, **result}
    json_path, md_path = out / "compare.json", out / "compare.md"
    json_path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    md_path.write_text(f"`{command}`\n\n" + markdown(result) + "\n")
    return json_path, md_path


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


# --------------------------------------------------------------------------------------------------------------
# Budget curves: what more training buys (records of benchmarks/budget.py)
# --------------------------------------------------------------------------------------------------------------

def log_fit(steps: list[float], accuracy: list[float]) -> tuple[float, float]:
    """Least-squares line accuracy = a * log2(steps) + b: (a, b); a is the accuracy gained per doubling."""
    if len(set(steps)) < 2:
        raise ValueError("a budget curve needs runs at two budgets at least")
    x = [math.log2(s) for s in steps]
    mx, my = sum(x) / len(x), sum(accuracy) / len(accuracy)
    a = sum((xi - mx) * (yi - my) for xi, yi in zip(x, accuracy)) / sum((xi - mx) ** 2 for xi in x)
    return a, my - a * mx


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
        if self.per_doubling is None:
            return f"{self.name} (N={self.record['n']}): {runs}; one budget, no slope"
        line = f"budget curve of {self.name} (N={self.record['n']}): {runs}; " \
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
    def verdict(self) -> str:
        lever = ", ".join(f"{k}={v}" for k, v in self.varied.items())
        if abs(self.gain) < self.noise:
            return f"{lever}: within noise"
        return f"{lever} {'helps' if self.gain > 0 else 'hurts'}"

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
    from . import zoo

    folder = Path(folder) if folder else zoo.results_dir()
    curves = {}
    for path in sorted(folder.glob("budget_*.json")):
        name = path.stem.removeprefix("budget_")
        curves[name] = BudgetCurve(name, json.loads(path.read_text()))
    return curves
