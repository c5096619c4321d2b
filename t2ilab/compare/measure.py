"""Measuring one point of a comparison: the protocol's metrics with the point's network evaluations, and the peak
memory of sampling one batch (`python -m t2ilab.compare.measure MODEL SEED DEVICE THREADS` prints it for one
model, in a fresh process)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from .plan import Point
from .. import zoo
from ..metrics.protocol import reference_set
from ..recipes import get_preset


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

    recipe = get_preset(point.model)
    options = recipe.options(dict(point.options))
    model = zoo.load(point.model, device=device)
    if recipe.role == "judge":  # the sampler it makes of the model it guides
        metrics = recipe.guided_metrics(model, point.n, seed, options)
    else:
        metrics = recipe.evaluate(model, n=point.n, seed=seed, options=options)
    return metrics | {"network_evaluations": recipe.network_evaluations(options)}


def memory_in_fresh_process(model: str, seed: int, device: str, threads: int) -> float | None:
    """`sampling_memory_mb` of one batch of 100 of `model` at its defaults, in a fresh Python process: in this one,
    memory freed by earlier points would be reused and hide what sampling needs."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "t2ilab.compare.measure", model, str(seed), device, str(threads)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"memory measurement of {model} failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _main(argv: list[str]) -> None:
    """The fresh process of `memory_in_fresh_process`: load MODEL, draw once to warm up, print the peak of a batch."""

    name, seed, device, threads = argv[0], int(argv[1]), argv[2], int(argv[3])
    torch.set_num_threads(threads)
    draw = get_preset(name).text_to_image(zoo.load(name, device=device), None, device)
    captions = reference_set(100, seed).captions
    draw(captions[:2], torch.Generator().manual_seed(0))
    print(json.dumps(sampling_memory_mb(draw, captions, device)))


if __name__ == "__main__":
    _main(sys.argv[1:])
