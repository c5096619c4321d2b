"""The model zoo: released weights (fp16 safetensors, no pickle) with a JSON model card beside each file.

The weights travel packed (`NAME.safetensors.xz`): the safetensors file with the bytes of its fp16 data split into
a plane of high bytes and a plane of low bytes, then xz-compressed. The packing is lossless; the card's `sha256` is
that of the unpacked safetensors bytes (what training wrote), `packed_sha256` that of the file on disk, and both
are checked on load. The split helps because a trained network's high bytes (sign, exponent) repeat a lot.

A card records what a reader needs to trust and reproduce the weights: the family and role of the model, the
class and its config, the exact `t2ilab train` command, the commit, wall time, machine, steps, the sha256 of the
weights file, and the metrics `t2ilab evaluate` measured (with N and seed). `load(name)` checks the sha256 before
reading a byte of weights, and builds only model classes that registered themselves (`t2ilab.registry`).

Metrics follow one schema for every card: a protocol evaluation (generator or judge) has the keys of
`metrics.EvalResult`, plus `generator` (the released model that drew the images), `sampling` (the options it drew
with) and, for a judge, `guide` (the judge that steered it); variants measured with other options live under `evaluations`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import lzma
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from ..errors import UsageError
from ..registry import MODEL_CLASSES

WEIGHTS_DIR = Path(__file__).parent / "weights"


class ZooError(UsageError, RuntimeError):
    """A released model is missing, damaged or inconsistent with its card (the CLI prints it as one line)."""


def weights_dir() -> Path:
    """`$T2ILAB_ZOO` if set (for experiments), else the package's `zoo/weights`."""
    return Path(os.environ.get("T2ILAB_ZOO", WEIGHTS_DIR))


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MAX_UNPACKED_BYTES = 256 << 20  # a packed file that inflates past this is refused, not unpacked


def _data_start(raw: bytes) -> int:
    """Where a safetensors file's tensor data begins: after the 8-byte header length and the JSON header."""
    return 8 + int.from_bytes(raw[:8], "little")


def pack_bytes(raw: bytes) -> bytes:
    """A safetensors file of fp16 tensors -> its packed form (header, high-byte plane, low-byte plane; xz)."""
    start = _data_start(raw)
    data = memoryview(raw)[start:]
    if len(data) % 2:
        raise ValueError("pack_bytes expects fp16 tensor data (an even number of bytes)")
    split = bytes(data[1::2]) + bytes(data[0::2])  # little-endian: the odd bytes are the high ones
    return lzma.compress(raw[:start] + split, preset=9 | lzma.PRESET_EXTREME)


def unpack_bytes(packed: bytes, limit: int = MAX_UNPACKED_BYTES) -> bytes:
    """Inverse of `pack_bytes`; refuses output larger than `limit`."""
    decompressor = lzma.LZMADecompressor()
    plain = decompressor.decompress(packed, max_length=limit)
    if not decompressor.eof:
        raise ZooError(f"packed weights inflate past {limit} bytes or are truncated")
    start = _data_start(plain)
    split = plain[start:]
    half = len(split) // 2
    data = bytearray(len(split))
    data[1::2], data[0::2] = split[:half], split[half:]
    return plain[:start] + bytes(data)


def available() -> list[str]:
    """Names of the released models (those with a card)."""
    folder = weights_dir()
    if not folder.is_dir():
        raise ZooError(f"the zoo folder {folder} does not exist"
                       + (" ($T2ILAB_ZOO points there)" if "T2ILAB_ZOO" in os.environ else ""))
    return sorted(p.stem for p in folder.glob("*.json"))


def load_card(name: str) -> dict[str, Any]:
    path = weights_dir() / f"{name}.json"
    if not path.exists():
        raise ZooError(f"no released model {name!r}: {path} does not exist; available: {available()}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ZooError(f"model card {path} is not valid JSON: {err}") from err


def _class(dotted: str, card_name: str) -> type:
    """The model class a card names: one that registered itself with `registry.register_model`. Its module is
    imported first when it is one of t2ilab's own (never code from outside the package, never the zoo's folder)."""
    module = dotted.rpartition(".")[0]
    if dotted not in MODEL_CLASSES and module.startswith("t2ilab.") and not module.startswith("t2ilab.zoo"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if dotted not in MODEL_CLASSES:
        raise ZooError(f"{card_name}.json names class {dotted!r}, which is not a t2ilab model class; "
                       f"known: {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[dotted]


REQUIRED_FIELDS = {"class": str, "config": dict, "weights": str, "sha256": str}
PACKED = ".safetensors.xz"


def _check_card(card: Any, name: str) -> None:
    path = weights_dir() / f"{name}.json"
    if not isinstance(card, dict):
        raise ZooError(f"model card {path} must hold a JSON object, not a {type(card).__name__}")
    for field, kind in REQUIRED_FIELDS.items():
        if not isinstance(card.get(field), kind):
            raise ZooError(f"model card {path}: field {field!r} is missing or not a {kind.__name__}")
    if card["weights"].endswith(PACKED) and not isinstance(card.get("packed_sha256"), str):
        raise ZooError(f"model card {path}: field 'packed_sha256' is missing or not a str")
    weights = card["weights"]
    if Path(weights).name != weights or weights in ("", ".", ".."):
        raise ZooError(f"model card {path}: field 'weights' must be a plain file name in {weights_dir()}, "
                       f"got {weights!r}")


def _config_from_dict(config_class: type, values: dict[str, Any]):
    known = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(values) - set(known))
    if unknown:  # a hand-edited or misspelt field would otherwise be ignored without a word
        raise ValueError(f"unknown field(s) {unknown} of {config_class.__name__} (known: {known})")
    kwargs = {}
    for f in dataclasses.fields(config_class):
        if f.name in values:
            v = values[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return config_class(**kwargs)


def load(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """Build the model of card `name`, check the weights' sha256, load them; returns it in eval mode."""
    card = load_card(name)
    _check_card(card, name)
    path = weights_dir() / card["weights"]
    if not path.is_file():
        raise ZooError(f"weights file missing: {path} (named in {name}.json); re-run: {card.get('command')}")
    state = _read_weights(path, card, name)
    cls = _class(card["class"], name)
    try:
        model = cls(_config_from_dict(cls.config_class, card["config"]))
    except (TypeError, ValueError) as err:
        raise ZooError(f"model card {name}.json: field 'config' does not build {card['class']}: {err}") from err
    try:
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except RuntimeError as err:  # a size mismatch
        raise ZooError(f"{path} does not fit the config in {name}.json: {str(err)[:300]}") from err
    if missing or unexpected:
        raise ZooError(f"{path} does not fit {card['class']}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    _attach_card_data(model, card)
    return model.to(device=device, dtype=dtype).eval()


def _read_weights(path: Path, card: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    """The tensors of a card's weights file, each byte checked against the card's sha256 before it is parsed."""
    retrain = f"restore it or retrain with: {card.get('command')}"
    packed = path.name.endswith(PACKED)
    raw = path.read_bytes()
    if packed:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != card["packed_sha256"]:
            raise ZooError(f"weights file {path} is damaged or altered: sha256 {actual[:16]}... but the card "
                           f"says {card['packed_sha256'][:16]}...; {retrain}")
        try:
            raw = unpack_bytes(raw, limit=min(MAX_UNPACKED_BYTES, int(card.get("size_bytes", MAX_UNPACKED_BYTES))))
        except (lzma.LZMAError, ValueError) as err:
            raise ZooError(f"weights file {path} does not unpack: {err}; {retrain}") from err
    actual = hashlib.sha256(raw).hexdigest()
    if actual != card["sha256"]:
        what = "unpacks to other weights than" if packed else "is damaged or altered:"
        raise ZooError(f"weights file {path} {what} sha256 {actual[:16]}... but the card says "
                       f"{card['sha256'][:16]}...; {retrain}")
    return load_bytes(raw)


def pack(name: str) -> Path:
    """Replace a released model's plain `NAME.safetensors` by its packed form; the card's sha256 stays valid (it
    names the unpacked bytes) and gains `packed_sha256`. Weights and card are swapped in atomically, card last."""
    card = load_card(name)
    _check_card(card, name)
    out = weights_dir()
    plain = out / card["weights"]
    if plain.name.endswith(PACKED):
        return plain
    raw = plain.read_bytes()
    if hashlib.sha256(raw).hexdigest() != card["sha256"]:
        raise ZooError(f"{plain} does not match its card's sha256; not packing damaged weights")
    packed = pack_bytes(raw)
    if unpack_bytes(packed) != raw:  # never trust a packing that was not read back
        raise ZooError(f"packing {plain} did not round-trip")
    target = out / f"{name}{PACKED}"
    tmp = out / f".{target.name}.tmp{os.getpid()}"
    try:
        tmp.write_bytes(packed)
        os.replace(tmp, target)
        write_card(name, {**card, "weights": target.name, "packed_sha256": hashlib.sha256(packed).hexdigest(),
                          "packed_bytes": len(packed)})
    finally:
        tmp.unlink(missing_ok=True)
    plain.unlink()
    return target


def _attach_card_data(model: nn.Module, card: dict[str, Any]) -> None:
    """What a model needs beside its weights, stored in its card (a tokenizer, the image tokenizer it was trained
    on): its class says what, in `restore_card_data(card)`, if it has any."""
    restore = getattr(model, "restore_card_data", None)
    if restore is not None:
        restore(card)


def git_commit() -> str:
    """HEAD of the repository this package lives in, with '-dirty' if tracked files have changes; where there is no
    repository, $T2ILAB_COMMIT (set by whoever copied the tree) or "unknown"."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):  # a copy without .git (e.g. on a lent GPU machine)
        return os.environ.get("T2ILAB_COMMIT", "unknown")


def machine_description(device: str) -> dict[str, Any]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def release(name: str, model: nn.Module, card: dict[str, Any]) -> Path:
    """Write `name.safetensors.xz` (fp16, packed) and `name.json` into the zoo; `card` gains weights, sha256s,
    class, config.

    Both are written to temporary files first and renamed into place, the card last, so that an interrupted
    release leaves the previous pair (or none), never new weights under an old card; if the card's rename fails
    after the weights', the previous weights are put back."""
    out = weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}{PACKED}"
    tmp_weights, tmp_card = out / f".{path.name}.tmp{os.getpid()}", out / f".{name}.json.tmp{os.getpid()}"
    backup = out / f".{path.name}.old{os.getpid()}"
    try:
        state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
        raw = save_bytes(state)
        packed = pack_bytes(raw)
        tmp_weights.write_bytes(packed)
        cls = type(model)
        full = {"name": name, "class": f"{cls.__module__}.{cls.__qualname__}",
                "config": dataclasses.asdict(model.cfg), "weights": path.name,
                "sha256": hashlib.sha256(raw).hexdigest(), "packed_sha256": hashlib.sha256(packed).hexdigest(),
                "dtype": "float16", "size_bytes": len(raw), "packed_bytes": len(packed), **card}
        tmp_card.write_text(json.dumps(full, indent=2, allow_nan=False) + "\n")
        if path.exists():  # the previous weights, kept until the new card is in place
            try:
                os.link(path, backup)
            except OSError:  # a file system without hard links
                backup.write_bytes(path.read_bytes())
        os.replace(tmp_weights, path)
        try:
            os.replace(tmp_card, out / f"{name}.json")
        except BaseException:
            if backup.exists():
                os.replace(backup, path)  # the previous pair again
            else:
                path.unlink(missing_ok=True)  # no pair rather than a mix
            raise
        for stale in (out / f"{name}.safetensors",):  # an older unpacked release of this name
            stale.unlink(missing_ok=True)
    finally:
        for tmp in (tmp_weights, tmp_card, backup):
            tmp.unlink(missing_ok=True)
    return path


def write_card(name: str, card: dict[str, Any]) -> Path:
    """Replace the card of a released model (e.g. with new metrics) atomically; the weights stay as they are."""
    path = weights_dir() / f"{name}.json"
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def update_card(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """Re-read a card under an exclusive lock, apply `change` to it and write it back atomically: two evaluations
    that write the same card at once each keep the other's result (on systems with `fcntl`; elsewhere unlocked)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        fcntl = None
    with open(weights_dir() / f".{name}.json.lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        card = load_card(name)
        change(card)
        return write_card(name, card)


def table(metrics: bool = False) -> str:
    """A text table of the released models: name, family, role, parameters, size, steps, wall time (under 88
    characters wide, for the book's column); with `metrics`, the class and the card's key metrics too."""
    head = ("name", "family", "role", "params", "MB", "steps", "train time")
    rows = [head + (("class", "metrics") if metrics else ())]

    def number(card: dict, key: str, scale: float, fmt: str, unit: str = "") -> str:
        value = card.get(key)
        return f"{value / scale:{fmt}}{unit}" if isinstance(value, (int, float)) else "?"

    damaged = []
    for name in available():
        try:
            card = load_card(name)
            _check_card(card, name)
        except ZooError as err:  # one damaged card is named under the table, not a failed listing
            damaged.append(f"DAMAGED {name}: {err}")
            continue
        size = "packed_bytes" if "packed_bytes" in card else "size_bytes"
        row = (name, str(card.get("family", "?")), str(card.get("role", "?")),
               number(card, "parameters", 1e6, ".2f", "M"), number(card, size, 1e6, ".1f"),
               str(card.get("steps", "?")), number(card, "wall_seconds", 60, ".1f", " min"))
        if metrics:
            values = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
            shown = ", ".join(f"{k}={v:.3g}" for k, v in values.items() if isinstance(v, (int, float)))[:70]
            row += (card["class"].rsplit(".", 1)[-1], shown)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows] + damaged)


def results_dir() -> Path:
    """Where the benchmark records live: `$T2ILAB_RESULTS` if set, else the checkout's `benchmarks/results/`. An
    installed (non-editable) t2ilab has no checkout: point `$T2ILAB_RESULTS` at a copy of that folder."""
    if "T2ILAB_RESULTS" in os.environ:
        return Path(os.environ["T2ILAB_RESULTS"])
    return Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def benchmark_record(name: str) -> dict[str, Any]:
    """A record under `results_dir()` (e.g. "latent_recipes.json"), as the chapters read it."""
    path = results_dir() / name
    if not path.is_file():
        hint = ("" if "T2ILAB_RESULTS" in os.environ or path.parent.is_dir() else
                "; an installed t2ilab finds the records through $T2ILAB_RESULTS (a copy of the repository's "
                "benchmarks/results)")
        raise ZooError(f"no benchmark record {path}; the benchmark that writes it is named in benchmarks/{hint}")
    return json.loads(path.read_text())
