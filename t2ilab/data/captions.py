"""Captions in the register of CUB's text_c10 (Reed et al., 2016), and their inverse, `parse_attributes`.

Each caption states a random subset of 3-6 of a bird's attribute groups with varied templates and
synonyms ("this small bird has a red crown, a grey breast and a short cone-shaped bill"). Because every
phrase comes from a fixed grammar, `parse_attributes` can read the stated attributes back exactly; this
is what makes text-image alignment measurable without human raters (chapter "Birds, captions and tokens").
"""
from __future__ import annotations

import re

import numpy as np

from .attributes import BIRD_GROUPS, COLORS

MIN_MENTIONED, MAX_MENTIONED = 3, 6

# Synonyms: every value has at least one word; the first is the canonical one.
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"), "orange": ("orange", "tangerine"), "yellow": ("yellow", "golden"),
    "green": ("green", "emerald"), "blue": ("blue", "azure"), "purple": ("purple", "violet"),
    "brown": ("brown", "chestnut", "tawny"), "black": ("black", "jet-black"), "white": ("white", "snowy"),
    "grey": ("grey", "gray", "slate"),
}
PART_WORDS = {
    "crown_color": ("crown", "head", "cap"),
    "breast_color": ("breast", "belly", "chest"),
    "wing_color": ("wings",),
}
PATTERN_WORDS = {
    "plain": ("plain", "solid-colored"), "barred": ("barred", "banded"),
    "striped": ("striped", "streaked"), "tipped": ("two-toned", "contrast-tipped"),
}
BILL_SHAPE_WORDS = {
    "cone": ("cone-shaped", "conical"), "hooked": ("hooked", "down-curved"),
    "needle": ("needle-like", "slender"), "flat": ("flat", "spoon-shaped"),
}
BILL_LENGTH_WORDS = {"short": ("short", "stubby"), "long": ("long",)}
BILL_NOUNS = ("bill", "beak")
TAIL_WORDS = {
    "forked": ("forked", "notched"), "fan": ("fan-shaped", "rounded"),
    "pointed": ("pointed", "wedge-shaped"), "square": ("square", "straight-edged"),
}
SIZE_WORDS = {"small": ("small", "tiny", "little"), "medium": ("medium-sized", "mid-sized"),
              "large": ("large", "big")}

assert set(COLOR_WORDS) == set(COLORS)


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    comma = "," if len(items) > 2 and len(items) % 2 else ""  # sometimes an Oxford comma, as people write
    return ", ".join(items[:-1]) + f"{comma} and " + items[-1]


def _phrases(attrs: dict[str, str], groups: list[str], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Noun phrases ("a red crown") and clauses ("its tail is forked") for the chosen groups (size excluded)."""
    nouns, clauses = [], []
    wing_color = attrs["wing_color"] if "wing_color" in groups else None
    wing_pattern = attrs["wing_pattern"] if "wing_pattern" in groups else None
    for g in groups:
        as_clause = bool(nouns) and rng.random() < 0.25  # the first is a noun phrase: templates need one
        if g in ("crown_color", "breast_color"):
            part, color = _pick(rng, PART_WORDS[g]), _pick(rng, COLOR_WORDS[attrs[g]])
            (clauses if as_clause else nouns).append(
                f"its {part} is {color}" if as_clause else _article(f"{color} {part}"))
        elif g == "wing_color" or (g == "wing_pattern" and wing_color is None):
            color = _pick(rng, COLOR_WORDS[wing_color]) if wing_color else None
            pattern = _pick(rng, PATTERN_WORDS[wing_pattern]) if wing_pattern else None
            if as_clause:
                clauses.append("its wings are " + " and ".join(w for w in (pattern, color) if w))
            else:
                nouns.append(" ".join(w for w in (pattern, color, "wings") if w))
        elif g == "bill_shape" or (g == "bill_length" and "bill_shape" not in groups):
            length = _pick(rng, BILL_LENGTH_WORDS[attrs["bill_length"]]) if "bill_length" in groups else None
            shape = _pick(rng, BILL_SHAPE_WORDS[attrs["bill_shape"]]) if "bill_shape" in groups else None
            noun = _pick(rng, BILL_NOUNS)
            if as_clause:
                clauses.append(f"its {noun} is " + " and ".join(w for w in (length, shape) if w))
            else:
                nouns.append(_article(" ".join(w for w in (length, shape, noun) if w)))
        elif g == "tail_shape":
            shape = _pick(rng, TAIL_WORDS[attrs[g]])
            (clauses if as_clause else nouns).append(
                f"its tail is {shape}" if as_clause else _article(f"{shape} tail"))
    return nouns, clauses


def make_caption(attrs: dict[str, str], rng: np.random.Generator) -> tuple[str, dict[str, str]]:
    """One caption of a bird with `attrs`; returns the text and the attributes it states."""
    groups = list(BIRD_GROUPS)
    k = int(rng.integers(MIN_MENTIONED, MAX_MENTIONED + 1))
    chosen = [groups[i] for i in sorted(rng.choice(len(groups), size=k, replace=False))]
    body_groups = [g for g in chosen if g != "size"]
    order = rng.permutation(len(body_groups))
    nouns, clauses = _phrases(attrs, [body_groups[i] for i in order], rng)
    size = _pick(rng, SIZE_WORDS[attrs["size"]]) + " " if "size" in chosen else ""
    template = int(rng.integers(6))
    listed = _join(nouns)
    if template == 0:
        text = f"this {size}bird has {listed}"
    elif template == 1:
        text = f"a {size}bird with {listed}"
    elif template == 2:
        text = f"this is a {size}bird with {listed}"
    elif template == 3:
        text = f"the {size}bird has {listed}"
    elif template == 4:
        text = f"{size}bird with {listed}"
    else:
        text = f"{listed} on this {size}bird"
    if clauses:
        text += ", and " + _join(clauses) if len(clauses) == 1 else "; " + _join(clauses)
    return text + ".", {g: attrs[g] for g in chosen}


# ----------------------------------------------------------------------------------------------------------
# Parsing: the grammar above, read backwards.
# ----------------------------------------------------------------------------------------------------------

def _alternation(table: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, str]]:
    lookup = {w: v for v, words in table.items() for w in words}
    pattern = "|".join(sorted(map(re.escape, lookup), key=len, reverse=True))
    return f"(?:{pattern})", lookup


_COLOR, _COLOR_OF = _alternation(COLOR_WORDS)
_PATTERN, _PATTERN_OF = _alternation(PATTERN_WORDS)
_SHAPE, _SHAPE_OF = _alternation(BILL_SHAPE_WORDS)
_LENGTH, _LENGTH_OF = _alternation(BILL_LENGTH_WORDS)
_TAIL, _TAIL_OF = _alternation(TAIL_WORDS)
_SIZE, _SIZE_OF = _alternation(SIZE_WORDS)
_BILL = "(?:bill|beak)"

_RULES: list[tuple[re.Pattern, list[tuple[str, dict[str, str]]]]] = [
    # (regex with one group per attribute, [(attribute group, word -> value)] in group order)
    (re.compile(rf"\b({_COLOR}) (?:crown|head|cap)\b"), [("crown_color", _COLOR_OF)]),
    (re.compile(rf"\b(?:crown|head|cap) is ({_COLOR})\b"), [("crown_color", _COLOR_OF)]),
    (re.compile(rf"\b({_COLOR}) (?:breast|belly|chest)\b"), [("breast_color", _COLOR_OF)]),
    (re.compile(rf"\b(?:breast|belly|chest) is ({_COLOR})\b"), [("breast_color", _COLOR_OF)]),
    (re.compile(rf"\b({_PATTERN})? ?({_COLOR})? ?wings\b"), [("wing_pattern", _PATTERN_OF), ("wing_color", _COLOR_OF)]),
    (re.compile(rf"\bwings are ({_PATTERN})?(?: and )?({_COLOR})?\b"),
     [("wing_pattern", _PATTERN_OF), ("wing_color", _COLOR_OF)]),
    (re.compile(rf"\b({_LENGTH})? ?({_SHAPE})? ?{_BILL}\b"), [("bill_length", _LENGTH_OF), ("bill_shape", _SHAPE_OF)]),
    (re.compile(rf"\b{_BILL} is ({_LENGTH})?(?: and )?({_SHAPE})?\b"),
     [("bill_length", _LENGTH_OF), ("bill_shape", _SHAPE_OF)]),
    (re.compile(rf"\b({_TAIL}) tail\b"), [("tail_shape", _TAIL_OF)]),
    (re.compile(rf"\btail is ({_TAIL})\b"), [("tail_shape", _TAIL_OF)]),
    (re.compile(rf"\b({_SIZE}) bird\b"), [("size", _SIZE_OF)]),
]


def parse_attributes(text: str) -> dict[str, str]:
    """The bird attributes a caption states, as {group: value}; groups it does not mention are absent."""
    text = text.lower()
    found: dict[str, str] = {}
    for regex, slots in _RULES:
        for match in regex.finditer(text):
            for (group, lookup), word in zip(slots, match.groups()):
                if word:
                    found[group] = lookup[word]
    return found
