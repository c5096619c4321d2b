"""One `t2ilab compare` run: every point of the plan measured or read back from the cache, the table's rows built
from each model's main point and card, and the lookup rows beside them."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .measure import measure, memory_in_fresh_process
from .plan import PROTOCOL_VERSION, QUALITY, UNSEEN, Point, cache_key, judge_versions, plan, released_generators
from .. import zoo
from ..data.synthbirds import t2ilab_home
from ..metrics.lookup import LOOKUPS, lookup
from ..metrics.protocol import evaluate_splits
from ..recipes import get_preset


def run(models: list[str] | None = None, n: int = 2000, sweep_n: int = 300, slow_n: int = 50, seed: int = 0,
        threads: int | None = None, device: str = "cpu", cache_dir: str | os.PathLike | None = None,
        sweeps: bool = True, progress: bool = True, memory: bool = True, lookups: bool = True) -> dict[str, Any]:
    """Measure every point of `plan(...)` (cached ones are read back) and return the comparison as a dict: the
    settings, one row per model (its main point with card facts) and every point. `memory` adds the sampling
    memory of each main point, measured in a fresh process (so only models of the preset registry); `lookups`
    adds the lookup rows (`metrics.lookup`), measured like a main point."""

    models = list(models) if models else released_generators()
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    cache = cache_folder(cache_dir)
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
            cached = _read_cached(path)
            record["cached"] = cached is not None
            metrics = (cached if cached is not None
                       else card_metrics(point, card, seed, threads, device, judges) or measure(point, seed, device))
            _store(path, metrics)
            if point.kind == "main" and memory:  # what sampling one batch needs, measured apart, cached apart
                memory_path = cache / f"{key}-memory.json"
                if _read_cached(memory_path) is None:
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


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where measured points are kept: `cache_dir`, default $T2ILAB_HOME/compare."""

    return Path(cache_dir) if cache_dir else t2ilab_home() / "compare"


def card_metrics(point: Point, card: dict[str, Any], seed: int, threads: int, device: str,
                 judges: dict[str, str]) -> dict[str, Any] | None:
    """The card's own metrics when `t2ilab evaluate --write` measured exactly this main point (defaults, same N,
    seed, threads, device, judges, both splits), so that a run after re-measuring the cards does not draw again."""
    m = card.get("metrics") or {}
    if point.kind != "main" or point.options or "unseen" not in m or m.get("judges") != judges:
        return None
    if (m.get("n"), m.get("seed"), m.get("threads"), m.get("device")) != (point.n, seed, threads, device):
        return None

    recipe = get_preset(point.model)
    return m | {"network_evaluations": recipe.network_evaluations(recipe.options(None))}


def lookup_rows(n: int, seed: int, threads: int, device: str, judges: dict[str, str], cache: Path) -> list[dict]:
    """The lookup rows (`metrics.lookup`) measured on both splits, cached under the judges' versions."""

    rows = []
    for name in LOOKUPS:
        settings = {"lookup": name, "n": n, "seed": seed, "threads": threads, "device": device, "judges": judges,
                    "version": PROTOCOL_VERSION}
        path = cache / f"{hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]}.json"
        if _read_cached(path) is None:
            _store(path, evaluate_splits(lookup(name), n, seed, device=device, progress=False))
        m = json.loads(path.read_text())
        rows.append({"model": name, "family": "lookup", "parameters": 0, "n": m.get("n"),
                     **{k: m.get(k) for k in QUALITY}, **unseen_columns(m)})
    return rows


def unseen_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """The unseen split's headline metrics as `unseen_<metric>` columns (None where it was not measured)."""
    unseen = metrics.get("unseen") or {}
    return {f"unseen_{k}": unseen.get(k) for k in UNSEEN}


def _read_cached(path: Path) -> dict[str, Any] | None:
    """A cached point, or None when there is none; a damaged file (cut short, not JSON) is removed, to be measured
    again, and named on stderr."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
        if isinstance(value, dict):
            return value
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass
    print(f"compare: {path} is damaged; measuring that point again", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


def _store(path: Path, value: dict[str, Any]) -> None:
    if path.is_file():
        return
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, allow_nan=False))
    os.replace(tmp, path)


def _row(name: str, records: list[dict], get_preset) -> dict[str, Any]:
    """The table row of one model: its main point's metrics and the facts of its card."""

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
