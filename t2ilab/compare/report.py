"""A comparison as people read it: Markdown tables narrow enough for the book's column, a flat list of every
measured point, and the `compare.json` / `compare.md` pair that the chapters read."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .. import zoo
from ..viz import pipe_table
from .plan import QUALITY, judge_versions
from ..recipes import get_preset

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
    rows = [[row.get("family", "?"), row["model"], f"failed: {row['error']}"] + [""] * (len(columns) - 3)
            if "error" in row else [_cell(row, k, f) for k, _, f in columns] for row in result["rows"]]
    return pipe_table([title for _, title, _ in columns], rows)


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


def alignment_line(name: str, record: dict | None = None) -> str:
    """What a chapter that reports a released generator's alignment prints: its attribute accuracy on both splits
    (from its card) and, beside it, what copying training birds scores (the lookup rows of the comparison record,
    `compare.json` unless `record` is given), seen / unseen."""
    m = zoo.load_card(name)["metrics"]
    unseen = (m.get("unseen") or {}).get("attribute_accuracy")
    own = (f"{name} (card, N={m['n']}): attribute accuracy {m['attribute_accuracy']:.1%} on seen species, "
           + (f"{unseen:.1%} on unseen combinations" if unseen is not None else "unseen split not measured"))
    record = record if record is not None else zoo.benchmark_record("compare.json")
    copies = [r for r in record.get("rows", []) if r.get("family") == "lookup" and "error" not in r]
    if not copies:
        return own + "\n(the comparison record has no lookup rows yet: t2ilab compare measures them)"
    shown = ", ".join(f"{r['model']} {r['attribute_accuracy']:.0%} / {r['unseen_attribute_accuracy']:.0%}"
                      for r in copies)
    return own + f"\ncopying training birds instead, seen / unseen (compare.json): {shown}"


def judges_note(record: dict) -> str:
    """"" when a benchmark record names today's judges (their sha256 under "judges", or under "settings"), else a
    note to print beside its figures: they were read by the judges before their retraining, on another scale."""
    judges = record.get("judges") or record.get("settings", {}).get("judges")
    return "" if judges == judge_versions() else " (read by the judges before their retraining)"
