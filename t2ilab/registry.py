"""The model classes the zoo may build, by dotted path. Each model class registers itself where it is defined
(`@register_model`); the zoo reads this list and never the preset registry, so that the zoo sits below the recipes
(which load released models through it) and no import cycle joins them."""
from __future__ import annotations

MODEL_CLASSES: dict[str, type] = {}


def dotted_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_model(cls: type) -> type:
    """Class decorator: `zoo.load` may build this class from a model card that names it."""
    MODEL_CLASSES[dotted_name(cls)] = cls
    return cls
