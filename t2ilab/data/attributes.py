"""The visible attribute vocabulary of SynthBirds-200 (chapter "Birds, captions and tokens").

A species is one value per *bird* group; an image adds one value per *nuisance* group. Captions talk about
bird groups only, so every word of a caption is something the picture shows. The groups follow the
part-based attributes of CUB-200-2011 (Wah et al., 2011), reduced to what is visible at 32x32.
"""
from __future__ import annotations

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.10, 0.09),
    "orange": (0.97, 0.52, 0.08),
    "yellow": (0.98, 0.87, 0.16),
    "green": (0.22, 0.60, 0.20),
    "blue": (0.13, 0.33, 0.82),
    "purple": (0.52, 0.18, 0.62),
    "brown": (0.48, 0.30, 0.14),
    "black": (0.09, 0.09, 0.10),
    "white": (0.96, 0.96, 0.93),
    "grey": (0.56, 0.56, 0.58),
}

BIRD_GROUPS: dict[str, tuple[str, ...]] = {
    "crown_color": tuple(COLORS),
    "breast_color": tuple(COLORS),
    "wing_color": tuple(COLORS),
    "wing_pattern": ("plain", "barred", "striped", "tipped"),
    "bill_shape": ("cone", "hooked", "needle", "flat"),
    "bill_length": ("short", "long"),
    "tail_shape": ("forked", "fan", "pointed", "square"),
    "size": ("small", "medium", "large"),
}

NUISANCE_GROUPS: dict[str, tuple[str, ...]] = {
    "facing": ("left", "right"),
    "pose": ("level", "upright", "leaning"),
    "background": ("sky", "forest", "water", "meadow", "dusk"),
    "perch": ("branch", "twig", "ground"),
}
# Position, scale, lighting and colour jitter are continuous nuisances, stored per image as numbers.
