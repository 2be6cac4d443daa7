"""Dependency parsing machinery in Python + numpy, the batched oracles compiled with
numba (``jit``; no model code):

- ``nonproj``: pseudo-projective lifting / restoring (Nivre & Nilsson 2005, HEAD scheme, as spaCy).
- ``arc_eager``: spaCy's arc-eager transition system (states, featurisation, validity,
  dynamic-oracle costs, action inventory from data, decoding).
- ``dep_scorer``: UAS / LAS (spaCy's, punct excluded; and CoNLL-2018 style) and per-label LAS.
"""

from .arc_eager import BREAK, INVALID_COST, LEFT, MOVE_NAMES, REDUCE, RIGHT, SHIFT, ArcEager, Gold, State
from .dep_scorer import score_deps
from .nonproj import deprojectivize, is_projective, projectivize

__all__ = [
    "ArcEager",
    "State",
    "Gold",
    "SHIFT",
    "REDUCE",
    "LEFT",
    "RIGHT",
    "BREAK",
    "MOVE_NAMES",
    "INVALID_COST",
    "projectivize",
    "deprojectivize",
    "is_projective",
    "score_deps",
]
