"""Input checks shared by the algorithm functions.

Every public function validates its arguments up front so that a length mismatch or a NaN from
a broken rollout fails at the call that received it, naming the argument, instead of surfacing
as a NaN loss several steps later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def as_finite_floats(values: Sequence[float], *, name: str) -> list[float]:
    """``values`` as a list of floats; raises ValueError naming ``name`` on NaN or infinity."""
    out = [float(v) for v in values]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ValueError(f"{name}[{i}] is {v}; every value must be finite")
    return out


def check_group(size: int, *, name: str) -> None:
    """A group needs at least two responses: with G = 1 there is no baseline and no entropy."""
    if size == 0:
        raise ValueError(f"{name} is empty; a group needs at least 2 responses (G >= 2)")
    if size < 2:
        raise ValueError(f"{name} has {size} response; a group needs at least 2 (G >= 2)")


def check_same_length(a_len: int, b_len: int, *, a: str, b: str) -> None:
    """Per-response arguments must describe the same responses."""
    if a_len != b_len:
        raise ValueError(f"{a} has {a_len} entries but {b} has {b_len}; they must match")
