"""The family interface: what every preset row provides, whatever its family.

A recipe is one row of the preset table: its family and role, model config, training config, data config and
default sampling options. It knows how to

- `build_job()`: build the model and the training job (`Job`: phases, batch function, config) for `t2ilab train`;
- `text_to_image(model, options)`: turn a released model into `(captions, generator) -> images` (generators and
  the judges that steer one), with typed sampling options checked by `parse_options`;
- `evaluate(model, n, seed, options)`: the metrics its model card holds.

`t2ilab train/evaluate/sample/compare` and the benchmarks only ever call these; a new family adds a module
beside this one and rows to the registry in `__init__.py`, and nothing else.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..data import DataConfig
from ..train import Phase, TrainConfig
from .. import zoo
from ..metrics.protocol import evaluate_splits
from ..nn import count_parameters

Role = Literal["generator", "judge", "tokenizer", "text encoder", "evaluator"]
TextToImage = Callable[[list[str], torch.Generator], torch.Tensor]  # captions, generator -> (B, 3, S, S) in [-1, 1]


@dataclass
class Job:
    """Everything `train` needs for one preset: the model, its phases (one for most models; a GAN's
    discriminator and generator), the batch function, the config, and extra facts for the model card."""

    model: nn.Module
    phases: list[Phase]
    batch_fn: Callable[[int, int, int], Any]
    config: TrainConfig
    card_extra: dict[str, Any] = field(default_factory=dict)
    monitor: Callable[..., None] | None = None  # train's on_checkpoint hook (a GAN's fixed grid of samples)


@dataclass
class Recipe:
    """One preset row. Subclasses (one per family module) set `family`, `role`, `model_class` and implement
    `build_job`, `tiny` and `evaluate`; generators and judges also `text_to_image` and a `sampling` default."""

    name: str
    description: str
    model_config: Any
    train_config: TrainConfig
    batch_size: int
    data: DataConfig = DataConfig()
    sampling: Any = None  # the default sampling options (a frozen dataclass), None for models that draw nothing

    family: ClassVar[str] = ""
    colour: ClassVar[str] = "tab:gray"  # the family's colour in the chapters' plots
    role: ClassVar[Role] = "generator"
    model_class: ClassVar[type[nn.Module]]

    def build_job(self, **overrides) -> Job:
        """The model (seeded by the config's seed) and its training job; `overrides` replace TrainConfig fields."""
        raise NotImplementedError

    def tiny(self) -> "Recipe":
        """The same recipe with a tiny model and batch, for tests."""
        raise NotImplementedError

    def text_to_image(self, model: nn.Module, options: Any = None, device: str = "cpu") -> TextToImage:
        raise ValueError(f"{self.name} is a {self.role}, not a text-to-image model")

    @property
    def reads_captions(self) -> bool:
        """Whether the model's images depend on the caption (False for an unconditional generator)."""
        return True

    def network_evaluations(self, options: Any) -> int:
        """Forward passes of the network per image drawn with `options` (a guided pass over a doubled batch counts
        two): the cost `t2ilab compare` reports. One, unless a family draws in steps."""
        return 1

    def evaluate(self, model: nn.Module, n: int | None = None, seed: int = 0, options: Any = None) -> dict[str, Any]:
        """The shared protocol's metrics of the images `text_to_image` draws with `options`, on the model's device;
        recipes of models that draw nothing (or that record more) override it."""

        options = self.options(options)
        device = model_device(model)
        return protocol_metrics(self.text_to_image(model, options, device), n, seed, device, self.name, options,
                                parameters=count_parameters(model))

    def config(self, **overrides) -> TrainConfig:
        return dataclasses.replace(self.train_config, **overrides)

    def variant(self, values: dict[str, Any]) -> "Recipe":
        """This recipe with some training settings changed, for measuring one lever at a time
        (`benchmarks/budget.py --vary`): each name is a plain field of the recipe (DF-GAN's `diffaugment`, a learning
        rate, the batch size) or of its model config (a width), and each value (a string is fine) is converted to
        the field's declared type. Unknown names and structured fields are refused, naming what can be set."""
        own = {k: v for k, v in settable_fields(self).items() if k not in ("name", "description")}
        model = settable_fields(self.model_config)
        changes: dict[str, dict[str, Any]] = {"recipe": {}, "model": {}}
        for name, raw in values.items():
            if name == "image_size":
                raise ValueError(f"image_size is the data's (the preset's DataConfig), not a lever of {self.name}")
            if name in own:
                changes["recipe"][name] = _convert(raw, own[name], name, self.name, "setting")
            elif name in model:
                changes["model"][name] = _convert(raw, model[name], name, self.name, "model setting")
            else:
                raise ValueError(f"{name!r} is not a setting of {self.name}; settable: "
                                 f"{', '.join(sorted(own))}; model: {', '.join(sorted(model))}")
        for kind, target in (("recipe", self), ("model", self.model_config)):
            for name, value in changes[kind].items():  # a count, width, rate or period that is positive stays so
                default = getattr(target, name)
                if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0 >= value:
                    raise ValueError(f"{name} must be positive (the preset's is {default}), got {value}")
        return dataclasses.replace(self, model_config=dataclasses.replace(self.model_config, **changes["model"]),
                                   **changes["recipe"])

    def options(self, values: Any = None) -> Any:
        """The sampling options: the defaults, with `values` (a dict of names -> values or strings) parsed in, or
        `values` itself when it already is an options object of this recipe."""
        if values is None or isinstance(values, dict):
            return parse_options(self.sampling, values or {}, self.name)
        if self.sampling is None or type(values) is not type(self.sampling):
            raise TypeError(f"{self.name} takes {type(self.sampling).__name__ if self.sampling else 'no'} options, "
                            f"got {type(values).__name__}")
        if hasattr(values, "check"):
            values.check()
        return values


# --------------------------------------------------------------------------------------------------------------
# Typed sampling options
# --------------------------------------------------------------------------------------------------------------

def knob(default: Any, sweep: tuple) -> Any:
    """A sampling option whose `sweep` values `t2ilab compare` tries, one option changed from the defaults at a
    time (each value a point of the quality-speed curve)."""
    return field(default=default, metadata={"sweep": tuple(sweep)})


def sweep_values(options: Any) -> dict[str, tuple]:
    """The knob values of an options dataclass, by option name (options without `knob` values are not swept)."""
    if options is None:
        return {}
    return {f.name: f.metadata["sweep"] for f in dataclasses.fields(options) if "sweep" in f.metadata}


def option_fields(options: Any) -> dict[str, Any]:
    """Names and types of an options dataclass."""
    if options is None:
        return {}
    hints = typing.get_type_hints(type(options))
    return {f.name: hints[f.name] for f in dataclasses.fields(options)}


def settable_fields(obj: Any) -> dict[str, Any]:
    """The fields of a dataclass instance that hold one plain value (bool, int, float, str or a Literal), with
    their types: what `Recipe.variant` may change."""
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)
            if hints[f.name] in (bool, int, float, str) or typing.get_origin(hints[f.name]) is Literal}


def describe_options(options: Any) -> str:
    """"guidance_scale (float, default 3.0), steps (int, default 25)" for error messages and --help."""
    if options is None:
        return "none"
    return ", ".join(f"{name} ({_type_name(kind)}, default {getattr(options, name)!r})"
                     for name, kind in option_fields(options).items())


def parse_options(defaults: Any, values: dict[str, Any], owner: str = "this model") -> Any:
    """`defaults` with `values` replaced, each converted to its declared type; unknown names, ill-typed values and
    non-finite numbers are refused with a ValueError naming the valid options."""
    if not values:
        return defaults
    if defaults is None:
        raise ValueError(f"{owner} takes no sampling options (got {sorted(values)})")
    fields = option_fields(defaults)
    parsed = {}
    for name, raw in values.items():
        if name not in fields:
            raise ValueError(f"unknown sampling option {name!r} for {owner}; valid options: {describe_options(defaults)}")
        parsed[name] = _convert(raw, fields[name], name, owner)
    options = dataclasses.replace(defaults, **parsed)
    check = getattr(options, "check", None)
    if check is not None:
        check()
    return options


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return " | ".join(repr(v) for v in typing.get_args(kind))
    return getattr(kind, "__name__", str(kind))


def _convert(raw: Any, kind: Any, name: str, owner: str, what: str = "sampling option") -> Any:
    wrong = ValueError(f"{what} {name} of {owner} must be {_type_name(kind)}, got {raw!r}")
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if raw not in allowed:
            raise wrong
        return raw
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise wrong
    if kind is int:
        if isinstance(raw, bool):
            raise wrong
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise wrong from None
        if not value.is_integer():
            raise wrong
        return int(value)
    if kind is float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise wrong from None
        if not math.isfinite(value):
            raise ValueError(f"{what} {name} of {owner} must be a finite number, got {raw!r}")
        return value
    if kind is str:
        return str(raw)
    raise TypeError(f"options of type {kind!r} are not supported")


# --------------------------------------------------------------------------------------------------------------
# Pieces several recipes share
# --------------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def frozen_clip(device: str = "cpu") -> nn.Module:
    """The released clip-birds, frozen: the text encoder every family reads (cached per device)."""

    return zoo.load("clip-birds", device=device).requires_grad_(False)


def tiny_data(data: DataConfig, images: int = 64) -> DataConfig:
    """The data config of a tiny test recipe: the first `images` images of each split."""
    return dataclasses.replace(data, limit=images)


def model_device(model: nn.Module) -> str:
    return str(next(model.parameters()).device)


def protocol_metrics(text_to_image: TextToImage, n: int | None, seed: int, device: str, generator: str,
                     options: Any, parameters: int | None = None) -> dict[str, Any]:
    """The shared protocol's metrics of a text-to-image function on both splits (the unseen split's under
    "unseen"), plus which generator and options drew them."""

    metrics = evaluate_splits(text_to_image, n=n or 2000, seed=seed, parameters=parameters, device=device)
    return metrics | {"generator": generator, "sampling": dataclasses.asdict(options)}
