"""Modulation functions f: how much of a prompt's advantage survives its uncertainty.

docs/ALGORITHMS.md section 2, step 5: A_hat_i = A_i * f(x) with x = alpha * SE / ln G (SEED-GRPO) or
x = alpha * U (GCPO). Every f maps x >= 0 into [0, 1] and never increases with x: the authors
report that *amplifying* uncertain prompts made training collapse. The paper names linear,
exponential and focal forms without formulas, so those three are reconstructions [recon];
``inverse`` is the released code's 1 / (1 + x) [3p].

A plug-in adds one with ``@register_modulation("name")`` on ``f(x, gamma) -> float``; its
name is then a valid ``algorithm.modulation``, and ``modulate`` refuses a value outside [0, 1].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from seedgrpo.algorithms.registry import Registry

__all__ = ["MODULATIONS", "modulate", "register_modulation"]

ModulationFn = Callable[[float, float], float]
MODULATIONS: Registry[ModulationFn] = Registry("modulation function")


def register_modulation(name: str) -> Callable[[ModulationFn], ModulationFn]:
    """Decorator: file ``f(x, gamma) -> float in [0, 1]`` as ``algorithm.modulation: name``.

    >>> @register_modulation("doc_half")
    ... def _half(x, gamma):
    ...     return 0.5
    >>> modulate(3.0, "doc_half")
    0.5
    >>> MODULATIONS.unregister("doc_half")  # keep the registry to the real entries
    """
    return MODULATIONS.register(name)


@MODULATIONS.register("none")
def _none(x: float, gamma: float) -> float:
    """f = 1: plain Dr. GRPO / GRPO, the baseline every sweep needs."""
    return 1.0


@MODULATIONS.register("linear")
def _linear(x: float, gamma: float) -> float:
    """f = max(0, 1 - x). [recon]"""
    return max(0.0, 1.0 - x)


@MODULATIONS.register("exp")
def _exp(x: float, gamma: float) -> float:
    """f = exp(-x). [recon]"""
    return math.exp(-x)


@MODULATIONS.register("focal")
def _focal(x: float, gamma: float) -> float:
    """f = max(0, 1 - x) ** gamma, gamma = 2 by default. [recon]"""
    return max(0.0, 1.0 - x) ** gamma


@MODULATIONS.register("inverse")
def _inverse(x: float, gamma: float) -> float:
    """f = 1 / (1 + x), the released SEED-GRPO code. [3p]"""
    return 1.0 / (1.0 + x)


def modulate(x: float, fn: str, gamma: float = 2.0) -> float:
    """Modulation factor f(x) in [0, 1] for a scaled uncertainty ``x >= 0``.

    >>> modulate(0.25, "linear"), modulate(0.5, "focal"), modulate(1.0, "inverse")
    (0.75, 0.25, 0.5)
    """
    for name, value in (("x", x), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} is {value!r}; it must be a number")
    x, gamma = float(x), float(gamma)
    if not math.isfinite(x) or x < 0.0:
        raise ValueError(f"x is {x}; the scaled uncertainty must be finite and >= 0")
    if not math.isfinite(gamma) or gamma <= 0.0:
        raise ValueError(f"gamma is {gamma}; the focal exponent must be finite and > 0")
    factor = MODULATIONS.get(fn)(x, gamma)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not (
            0.0 <= float(factor) <= 1.0):
        raise ValueError(f"modulation '{fn}' gave f({x}) = {factor!r}; f must map into [0, 1]")
    return float(factor)
