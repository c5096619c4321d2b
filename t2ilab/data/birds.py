"""SynthBirds-200: a procedural stand-in for CUB-200-2011 (chapter "Birds, captions and tokens").

CUB-200-2011 (Wah et al., 2011) has 200 species, 11,788 images split 5,994 / 5,794, and Reed et al. (2016)
added ten captions per image. SynthBirds-200 keeps those figures exactly, so every model in the course
trains at CUB's scale, but it is drawn here in seconds, deterministically, with the ground truth that real
photos lack: each image's species, every attribute value and its bounding box.

How a bird is drawn:
1. a species fixes one value per attribute group (crown, breast and wing colour, wing pattern, bill shape
   and length, tail shape, size; see `attributes.py`); species differ from each other in at least three;
2. an image adds nuisances: facing, pose (tilt), position, scale jitter, background scene, perch, light;
3. every part is a signed distance function in the bird's own frame, and a pixel's coverage is
   `clamp(0.5 - sdf / pixel, 0, 1)`, which anti-aliases edges analytically; parts are composited back to
   front (background, perch, legs, outline, tail, body, breast, wing, head, bill, eye).

Rendering is batched in torch and uses only exactly rounded operations (+, *, /, sqrt, min, max, floor),
so the same seed gives the same bytes on any machine; random draws come from numpy's PCG64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .attributes import BIRD_GROUPS, COLORS, NUISANCE_GROUPS

NUM_SPECIES = 200
NUM_IMAGES = 11_788
NUM_TRAIN = 5_994
NUM_TEST = 5_794
RENDER_SIZE = 64
SPECIES_SEED = 2011  # the species table is the same for every data seed
MIN_SPECIES_DISTANCE = 3  # species differ in at least this many attribute groups

_FAMILY = {"cone": "Finch", "hooked": "Shrike", "needle": "Warbler", "flat": "Flatbill"}
_TAIL_WORD = {"forked": "Fork-tailed", "fan": "Fan-tailed", "pointed": "Spine-tailed", "square": "Square-tailed"}


@dataclass(frozen=True)
class Species:
    """One species: an id, an English-looking name, and one value per bird attribute group."""

    id: int
    name: str
    attributes: dict[str, str]


def make_species(num_species: int = NUM_SPECIES, seed: int = SPECIES_SEED) -> list[Species]:
    """Draw `num_species` attribute combinations, each at least MIN_SPECIES_DISTANCE groups from the others."""
    rng = np.random.default_rng(seed)
    groups = list(BIRD_GROUPS)
    sizes = np.array([len(BIRD_GROUPS[g]) for g in groups])
    codes: list[np.ndarray] = []
    while len(codes) < num_species:
        candidate = rng.integers(0, sizes)
        if all(int((candidate != c).sum()) >= MIN_SPECIES_DISTANCE for c in codes):
            codes.append(candidate)
    species, names = [], set()
    for i, code in enumerate(codes):
        attrs = {g: BIRD_GROUPS[g][int(v)] for g, v in zip(groups, code)}
        name = _species_name(attrs, names)
        names.add(name)
        species.append(Species(i, name, attrs))
    return species


def _species_name(attrs: dict[str, str], taken: set[str]) -> str:
    crown, breast, wing = attrs["crown_color"].title(), attrs["breast_color"].title(), attrs["wing_color"].title()
    family = _FAMILY[attrs["bill_shape"]]
    for name in (f"{crown}-capped {family}", f"{breast}-breasted {family}", f"{wing}-winged {family}",
                 f"{_TAIL_WORD[attrs['tail_shape']]} {crown}-capped {family}",
                 f"{attrs['size'].title()} {breast}-breasted {family}"):
        if name not in taken:
            return name
    n = 2
    while f"{crown}-capped {family} {n}" in taken:
        n += 1
    return f"{crown}-capped {family} {n}"


def species_image_counts() -> tuple[np.ndarray, np.ndarray]:
    """Images per species for train and test, matching CUB's totals: (train[200], test[200])."""
    total = np.full(NUM_SPECIES, NUM_IMAGES // NUM_SPECIES)
    total[: NUM_IMAGES - total.sum()] += 1
    train = np.full(NUM_SPECIES, NUM_TRAIN // NUM_SPECIES)
    train[: NUM_TRAIN - train.sum()] += 1
    return train, total - train


# ----------------------------------------------------------------------------------------------------------
# Scene parameters: everything random about one image, drawn up front as numpy arrays (one row per image).
# ----------------------------------------------------------------------------------------------------------

_SIZE_SCALE = {"small": 0.62, "medium": 0.76, "large": 0.90}
_POSE_TILT_DEG = {"level": (-8.0, 6.0), "upright": (22.0, 34.0), "leaning": (-24.0, -15.0)}


def sample_scenes(species_ids: np.ndarray, species: list[Species], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the nuisances of each image; returns a dict of arrays with one row per image."""
    n = len(species_ids)
    attr_index = {g: np.array([BIRD_GROUPS[g].index(species[s].attributes[g]) for s in species_ids])
                  for g in BIRD_GROUPS}
    facing = rng.integers(0, 2, n)
    pose = rng.integers(0, len(NUISANCE_GROUPS["pose"]), n)
    lo = np.array([_POSE_TILT_DEG[p][0] for p in NUISANCE_GROUPS["pose"]])[pose]
    hi = np.array([_POSE_TILT_DEG[p][1] for p in NUISANCE_GROUPS["pose"]])[pose]
    size = np.array([_SIZE_SCALE[v] for v in BIRD_GROUPS["size"]])[attr_index["size"]]
    return {
        **{f"attr_{g}": v for g, v in attr_index.items()},
        "facing": facing,
        "pose": pose,
        "tilt": np.deg2rad(rng.uniform(lo, hi)),
        "scale": size * rng.uniform(0.95, 1.05, n),
        "center_x": rng.uniform(-0.12, 0.12, n),
        "center_y": rng.uniform(0.0, 0.14, n),
        "background": rng.integers(0, len(NUISANCE_GROUPS["background"]), n),
        "perch": rng.integers(0, len(NUISANCE_GROUPS["perch"]), n),
        "perch_slope": rng.uniform(-0.18, 0.18, n),
        "horizon": rng.uniform(-0.35, 0.05, n),
        "brightness": rng.uniform(0.9, 1.08, n),
        "tint": rng.uniform(-0.025, 0.025, (n, 3)),
        "color_jitter": rng.normal(0.0, 0.02, (n, 3, 3)),  # (image, part: crown/breast/wing, rgb)
        "blobs": rng.uniform(0.0, 1.0, (n, 4, 4)),  # clouds / foliage: x, y, radius, shade
    }


# ----------------------------------------------------------------------------------------------------------
# Signed distance functions (negative inside). All take coordinate grids and broadcastable parameters.
# ----------------------------------------------------------------------------------------------------------

def _circle(x, y, cx, cy, r):
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - r


def _ellipse(x, y, cx, cy, a, b):
    # First-order approximation: exact on the boundary, good enough for a one-pixel anti-aliasing ramp.
    k = torch.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
    return (k - 1.0) * min(a, b)


def _convex(x, y, points):
    """Signed distance-like function of a convex polygon given counter-clockwise (max over edge half-planes)."""
    d = None
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        dx, dy = x1 - x0, y1 - y0
        length = torch.sqrt(torch.as_tensor(dx * dx + dy * dy, dtype=torch.float32))
        edge = ((x - x0) * dy - (y - y0) * dx) / length
        d = edge if d is None else torch.maximum(d, edge)
    return d


def _segment(x, y, x0, y0, x1, y1, r):
    dx, dy = x1 - x0, y1 - y0
    h = (((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0)
    return torch.sqrt((x - x0 - h * dx) ** 2 + (y - y0 - h * dy) ** 2) - r


def _select(index, options):
    """Pick options[index[b]] per image b; options are sdf tensors of the same shape."""
    out = options[-1]
    for k in range(len(options) - 2, -1, -1):
        out = torch.where(index == k, options[k], out)
    return out


def _coverage(sdf_world, pixel):
    return (0.5 - sdf_world / pixel).clamp(0.0, 1.0)


def _over(image, alpha, color):
    """Composite `color` (B,3,1,1) over `image` (B,3,H,W) with coverage `alpha` (B,1,H,W)."""
    return image + alpha * (color - image)


# ----------------------------------------------------------------------------------------------------------
# The renderer
# ----------------------------------------------------------------------------------------------------------

_BACKGROUNDS = {  # top colour, bottom colour, lower-half colour (below the horizon) or None
    "sky": ((0.56, 0.73, 0.93), (0.86, 0.92, 0.98), None),
    "forest": ((0.50, 0.64, 0.45), (0.33, 0.47, 0.30), None),
    "water": ((0.62, 0.78, 0.94), (0.86, 0.92, 0.97), (0.34, 0.52, 0.66)),
    "meadow": ((0.60, 0.76, 0.93), (0.88, 0.92, 0.95), (0.58, 0.70, 0.36)),
    "dusk": ((0.93, 0.68, 0.55), (0.66, 0.55, 0.72), None),
}
_GROUND = (0.55, 0.46, 0.33)
_BRANCH = ((0.38, 0.26, 0.15), (0.30, 0.22, 0.14))
_LEG = (0.26, 0.20, 0.17)
_OUTLINE = (0.07, 0.07, 0.08)
_DARK_BILL, _LIGHT_BILL = (0.20, 0.18, 0.17), (0.86, 0.74, 0.42)
_DARK_CROWNS = ("black", "brown", "purple", "blue")


def _t(values, dtype=torch.float32):
    """numpy rows -> tensor broadcastable over (B, C|1, H, W)."""
    t = torch.as_tensor(np.asarray(values), dtype=dtype)
    return t.reshape(t.shape[0], -1, 1, 1)  # (B,) -> (B,1,1,1); (B, 3) -> (B,3,1,1)


class Rendered(NamedTuple):
    images: np.ndarray  # (B, size, size, 3) uint8
    boxes: np.ndarray  # (B, 4) int16: x, y, w, h of the bird (outline included)
    masks: np.ndarray  # (B, size, size) bool: pixels the bird covers


def render(scenes: dict[str, np.ndarray], size: int = RENDER_SIZE) -> Rendered:
    """Draw a batch of scenes (one row per image in every array of `scenes`)."""
    n = len(scenes["facing"])
    pixel = 2.0 / size
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) * pixel - 1.0
    X = coords.view(1, 1, 1, size)
    Y = -coords.view(1, 1, size, 1)  # y points up

    def col(rgb):  # a constant colour as (1, 3, 1, 1)
        return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1)

    def per_image(index_rows, table):  # colour table lookup -> (B, 3, 1, 1)
        return torch.tensor(np.asarray(table, dtype=np.float32)[index_rows]).view(n, 3, 1, 1)

    # 1. Background: vertical gradient, optional lower band (water, meadow), soft blobs.
    bg_names = NUISANCE_GROUPS["background"]
    top = per_image(scenes["background"], [_BACKGROUNDS[b][0] for b in bg_names])
    bottom = per_image(scenes["background"], [_BACKGROUNDS[b][1] for b in bg_names])
    lower = per_image(scenes["background"], [_BACKGROUNDS[b][2] or _BACKGROUNDS[b][1] for b in bg_names])
    has_lower = _t(np.array([_BACKGROUNDS[b][2] is not None for b in bg_names])[scenes["background"]])
    image = top + (bottom - top) * (1.0 - Y) * 0.5
    horizon = _t(scenes["horizon"])
    image = _over(image, _coverage(Y - horizon, pixel) * has_lower, lower)
    blobs = torch.as_tensor(scenes["blobs"], dtype=torch.float32)
    is_foliage = _t(np.isin(scenes["background"], [bg_names.index("forest"), bg_names.index("meadow")]))
    base_mean = image.mean(dim=(2, 3), keepdim=True)
    for k in range(blobs.shape[1]):
        bx, by = blobs[:, k, 0].view(n, 1, 1, 1) * 2 - 1, blobs[:, k, 1].view(n, 1, 1, 1) * 2 - 1
        br = 0.12 + 0.22 * blobs[:, k, 2].view(n, 1, 1, 1)
        shade = 0.85 + 0.3 * blobs[:, k, 3].view(n, 1, 1, 1)
        alpha = (-_circle(X, Y, bx, by, br) / 0.2).clamp(0.0, 1.0) * 0.35  # soft-edged disc
        blob_color = base_mean * shade * is_foliage + col((1, 1, 1)) * (1 - is_foliage)
        image = _over(image, alpha, blob_color)

    # 2. The bird's frame: translate, scale, mirror when facing left, rotate by the pose tilt.
    s = _t(scenes["scale"])
    cx, cy = _t(scenes["center_x"]), _t(scenes["center_y"])
    cos_t, sin_t = _t(np.cos(scenes["tilt"])), _t(np.sin(scenes["tilt"]))
    mirror = _t(np.where(scenes["facing"] == 0, -1.0, 1.0))  # facing index 0 is "left"
    qx, qy = (X - cx) / s * mirror, (Y - cy) / s
    x, y = cos_t * qx + sin_t * qy, -sin_t * qx + cos_t * qy

    def to_world(lx, ly):  # a bird-frame point (numpy floats) -> world coordinates, (B,1,1,1) each
        wx = (cos_t * lx - sin_t * ly) * s * mirror + cx
        wy = (sin_t * lx + cos_t * ly) * s + cy
        return wx, wy

    def cover(sdf_local):
        return _coverage(sdf_local * s, pixel)

    attr = {g: _t(scenes[f"attr_{g}"], torch.long) for g in BIRD_GROUPS}
    jitter = torch.as_tensor(scenes["color_jitter"], dtype=torch.float32).view(n, 3, 3, 1, 1)
    colors = np.array(list(COLORS.values()), dtype=np.float32)
    crown_rgb = (per_image(scenes["attr_crown_color"], colors) + jitter[:, 0]).clamp(0, 1)
    breast_rgb = (per_image(scenes["attr_breast_color"], colors) + jitter[:, 1]).clamp(0, 1)
    wing_rgb = (per_image(scenes["attr_wing_color"], colors) + jitter[:, 2]).clamp(0, 1)

    # 3. Bird parts in the bird frame (facing right, body centred at the origin, body length ~0.84).
    body = _ellipse(x, y, 0.0, 0.0, 0.42, 0.25)
    head = _circle(x, y, 0.36, 0.20, 0.18)
    breast = torch.maximum(body, _ellipse(x, y, 0.14, -0.09, 0.34, 0.20))
    wx, wy = x + 0.06, y - 0.03  # wing frame: rotated 12 degrees, tip pointing back and down
    wc, ws = math.cos(math.radians(12)), math.sin(math.radians(12))
    wx, wy = wc * wx - ws * wy, ws * wx + wc * wy
    wing = _ellipse(wx, wy, 0.0, 0.0, 0.36, 0.14)

    tx, ty = -(x + 0.34), -(y + 0.02)  # tail frame: from the rump backwards, slightly down
    tc, ts = math.cos(math.radians(-14)), math.sin(math.radians(-14))
    tx, ty = tc * tx - ts * ty, ts * tx + tc * ty
    length = 0.42
    square = _convex(tx, ty, [(0.0, -0.06), (length, -0.12), (length, 0.12), (0.0, 0.06)])
    notch = _convex(tx, ty, [(0.45 * length, 0.0), (length + 0.1, -0.09), (length + 0.1, 0.09)])
    half_angle = math.radians(24)
    tails = [
        torch.maximum(square, -notch),  # forked
        torch.maximum(torch.sqrt(tx * tx + ty * ty) - length,
                      ty.abs() * math.cos(half_angle) - tx * math.sin(half_angle)),  # fan
        _convex(tx, ty, [(0.0, -0.075), (length + 0.12, 0.0), (0.0, 0.075)]),  # pointed
        square,  # square
    ]
    tail = _select(attr["tail_shape"], tails)

    bill_len = _t(np.where(scenes["attr_bill_length"] == BIRD_GROUPS["bill_length"].index("long"), 0.28, 0.13))
    tip = 0.50 + bill_len
    bills = [
        _convex(x, y, [(0.47, 0.105), (tip, 0.17), (0.47, 0.255)]),  # cone
        _convex(x, y, [(0.47, 0.12), (0.50 + 0.8 * bill_len, 0.12), (tip, 0.08), (0.47, 0.25)]),  # hooked
        _convex(x, y, [(0.48, 0.15), (0.50 + 1.25 * bill_len, 0.17), (0.48, 0.21)]),  # needle
        torch.minimum(_convex(x, y, [(0.47, 0.13), (0.50 + 0.9 * bill_len, 0.12),
                                     (0.50 + 0.9 * bill_len, 0.21), (0.47, 0.20)]),
                      _circle(x, y, 0.50 + 0.9 * bill_len, 0.165, 0.048)),  # flat
    ]
    bill = _select(attr["bill_shape"], bills)
    eye_ring, eye = _circle(x, y, 0.42, 0.25, 0.05), _circle(x, y, 0.425, 0.25, 0.03)

    # 4. Wing pattern marks, in the wing frame; light marks on dark wings and dark marks on light ones.
    period = 0.16
    phase = (wx + 1.0) / period
    bars = torch.maximum((torch.abs(phase - torch.floor(phase) - 0.5) - 0.22) * period, wx - 0.14)
    stripe = torch.abs(wy + 0.01) - 0.035
    tipped = wx + 0.12
    plain = torch.full_like(wing, 1.0)
    marks = torch.maximum(_select(attr["wing_pattern"], [plain, bars, stripe, tipped]), wing)
    luminance = (wing_rgb * torch.tensor([0.3, 0.59, 0.11]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mark_rgb = torch.where(luminance > 0.5, col((0.1, 0.1, 0.1)), col((0.95, 0.95, 0.92)))

    # 5. Perch under the feet, legs straight down from the hips, in world coordinates.
    hips = [to_world(0.06, -0.17), to_world(-0.06, -0.19)]
    foot_y = torch.minimum(hips[0][1], hips[1][1]) - 0.15 * s
    perch = _t(scenes["perch"])
    slope = _t(scenes["perch_slope"])
    perch_line = (Y - foot_y - slope * (X - cx)) / torch.sqrt(1.0 + slope * slope)  # distance to the perch
    branch = torch.where(perch == 0, perch_line.abs() - 0.045, perch_line.abs() - 0.022)
    branch_rgb = torch.where(perch == 0, col(_BRANCH[0]), col(_BRANCH[1]))
    ground = perch_line + 0.01

    # 6. Composite back to front.
    image = _over(image, _coverage(ground, pixel) * (perch == 2), col(_GROUND))
    image = _over(image, _coverage(branch, pixel) * (perch != 2), branch_rgb)
    for hx, hy in hips:
        image = _over(image, _coverage(_segment(X, Y, hx, hy, hx, foot_y - 0.01, 0.014 + 0.006 * s), pixel),
                      col(_LEG))
    silhouette = torch.minimum(torch.minimum(body, head), torch.minimum(tail, torch.minimum(bill, wing)))
    image = _over(image, cover(silhouette - 0.035), col(_OUTLINE))
    image = _over(image, cover(tail), wing_rgb * 0.78)
    image = _over(image, cover(body), wing_rgb * 0.88)
    image = _over(image, cover(breast), breast_rgb)
    image = _over(image, cover(wing), wing_rgb)
    image = _over(image, cover(marks), mark_rgb)
    image = _over(image, cover(head), crown_rgb)
    dark_crown = _t(np.isin(scenes["attr_crown_color"], [list(COLORS).index(c) for c in _DARK_CROWNS]))
    image = _over(image, cover(bill), torch.where(dark_crown > 0, col(_LIGHT_BILL), col(_DARK_BILL)))
    image = _over(image, cover(eye_ring), col((0.92, 0.92, 0.88)))
    image = _over(image, cover(eye), col((0.03, 0.03, 0.03)))

    # 7. Light: brightness and a slight colour cast, then 8-bit quantisation.
    image = image * _t(scenes["brightness"]) + _t(scenes["tint"])
    image = (image.clamp(0.0, 1.0) * 255.0 + 0.5).floor().to(torch.uint8)

    mask = cover(silhouette - 0.035)[:, 0] > 0.5  # (B, H, W)
    rows, cols = mask.any(2), mask.any(1)
    idx = torch.arange(size)
    x0 = torch.where(cols, idx, size).min(1).values
    x1 = torch.where(cols, idx, -1).max(1).values
    y0 = torch.where(rows, idx, size).min(1).values
    y1 = torch.where(rows, idx, -1).max(1).values
    boxes = torch.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], 1)
    return Rendered(image.permute(0, 2, 3, 1).contiguous().numpy(), boxes.numpy().astype(np.int16), mask.numpy())
