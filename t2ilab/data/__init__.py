"""Data: SynthBirds-200 (the default), real CUB-200-2011, captions and tokenizers (chapter "Birds, captions and tokens")."""
from .attributes import BIRD_GROUPS, COLORS, NUISANCE_GROUPS
from .captions import make_caption, parse_attributes
from .synthbirds import BirdItem, SynthBirds, t2ilab_home

__all__ = ["BIRD_GROUPS", "COLORS", "NUISANCE_GROUPS", "BirdItem", "SynthBirds", "make_caption",
           "parse_attributes", "t2ilab_home"]
