"""Uncertainty sources: what the modulation f reads about one prompt's group.

A source is a function of the group (``GroupContext``: rewards, answers, cluster ids, log-probs,
embeddings, G and the algorithm config) that returns an ``Uncertainty``: the raw value, which
is logged (``train/uncertainty_mean``, the ``uncertainty`` column of ``groups.jsonl``), and x,
the scaled value that f reads. Keeping the scaling inside the source is what lets SEED-GRPO
divide by ln G while GCPO does not, with one scorer for both.

Built-ins, registered like any plug-in::

    semantic_entropy   x = alpha * SE / ln G                       SEED-GRPO [paper]
    gcpo               x = alpha * U, U = geometry * (1 - RD_n)^kappa   GCPO [recon]

A new source is one decorated function, in the package or in a plug-in module named by an
experiment's ``plugins:``::

    from seedgrpo.algorithms import Uncertainty, register_uncertainty

    @register_uncertainty("wrong_fraction")
    def wrong_fraction(ctx):
        u = sum(r < 0.5 for r in ctx.rewards) / ctx.group_size
        return Uncertainty(u, ctx.algo.alpha * u)

Its name is then a valid ``algorithm.uncertainty``. ``needs_embeddings=True`` asks the trial
for one embedding row per response (GCPO's policy hidden states).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from seedgrpo.algorithms.entropy import semantic_entropy
from seedgrpo.algorithms.geometry import gcpo_uncertainty
from seedgrpo.algorithms.registry import Registry

__all__ = ["UNCERTAINTY_SOURCES", "GroupContext", "Uncertainty", "UncertaintySource",
           "measure_uncertainty", "register_uncertainty", "uncertainty_needs_embeddings"]


@dataclass(frozen=True)
class GroupContext:
    """What an uncertainty source may read about one group of G responses (in sample order).

    ``logprobs``: one log-likelihood per response, normalised as
    ``algorithm.logprob_normalization`` says (mean token log-prob by default);
    ``embeddings``: one row per response, or None unless the source ``needs_embeddings``;
    ``algo``: the experiment's ``AlgorithmConfig`` (``seedgrpo.config.sections``), typed loosely
    because this layer sits below the config layer and must not import it.
    """

    rewards: Sequence[float]
    answers: Sequence[str | None]
    cluster_ids: Sequence[int]
    logprobs: Sequence[float] | None  # None: the library's callers with no log-probs
    embeddings: Sequence[Sequence[float]] | Any | None
    algo: Any

    @property
    def group_size(self) -> int:
        return len(self.rewards)

    @cached_property
    def semantic_entropy(self) -> float:
        """SE of the group with the configured estimator (nats); computed once, shared by the
        ``semantic_entropy`` source and the ``se`` column every run logs."""
        discrete = self.algo.estimator == "discrete"
        return semantic_entropy(self.cluster_ids, None if discrete else self.logprobs,
                                self.algo.estimator)


@dataclass(frozen=True)
class Uncertainty:
    """A source's answer: ``value`` is logged, ``x`` (finite, >= 0) is what f reads."""

    value: float
    x: float


UncertaintyFn = Callable[[GroupContext], Uncertainty]


@dataclass(frozen=True)
class UncertaintySource:
    """A registered source and what it needs from the trial."""

    name: str
    fn: UncertaintyFn
    needs_embeddings: bool = False

    def __call__(self, ctx: GroupContext) -> Uncertainty:
        return self.fn(ctx)


UNCERTAINTY_SOURCES: Registry[UncertaintySource] = Registry("uncertainty source")


def register_uncertainty(name: str, *, needs_embeddings: bool = False
                         ) -> Callable[[UncertaintyFn], UncertaintyFn]:
    """Decorator: file ``fn(ctx) -> Uncertainty`` as ``algorithm.uncertainty: name``.

    >>> @register_uncertainty("doc_constant")
    ... def _constant(ctx):
    ...     return Uncertainty(0.5, ctx.algo.alpha * 0.5)
    >>> UNCERTAINTY_SOURCES.get("doc_constant").needs_embeddings
    False
    >>> UNCERTAINTY_SOURCES.unregister("doc_constant")  # keep the registry to the real entries
    """

    def decorate(fn: UncertaintyFn) -> UncertaintyFn:
        UNCERTAINTY_SOURCES.register(name)(UncertaintySource(name, fn, needs_embeddings))
        return fn

    return decorate


def uncertainty_needs_embeddings(name: str) -> bool:
    """Whether the trial must compute response embeddings for ``algorithm.uncertainty``."""
    return UNCERTAINTY_SOURCES.get(name).needs_embeddings


def _finite(value: object, what: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
            float(value)):
        raise ValueError(f"uncertainty source '{name}' returned {what} = {value!r}; it must be a "
                         "finite number")
    return float(value)


def measure_uncertainty(name: str, ctx: GroupContext) -> Uncertainty:
    """The group's uncertainty from source ``name``, checked: a plug-in that returns NaN or a
    negative x fails here, naming itself, not as a NaN loss steps later."""
    source = UNCERTAINTY_SOURCES.get(name)
    if source.needs_embeddings and ctx.embeddings is None:
        raise ValueError(f"algorithm.uncertainty '{name}' needs one embedding per completion")
    result = source(ctx)
    if not isinstance(result, Uncertainty):
        raise ValueError(f"uncertainty source '{name}' returned {type(result).__name__}; it "
                         "must return seedgrpo.algorithms.Uncertainty(value, x)")
    value = _finite(result.value, "value", name)
    x = _finite(result.x, "x", name)
    if x < 0.0:
        raise ValueError(f"uncertainty source '{name}' returned x = {x}; x must be >= 0")
    return Uncertainty(value, x)


@register_uncertainty("semantic_entropy")
def _semantic_entropy(ctx: GroupContext) -> Uncertainty:
    """SEED-GRPO: SE in nats, scaled by alpha / ln G so that x is in [0, alpha]. [paper]"""
    se = ctx.semantic_entropy
    return Uncertainty(se, ctx.algo.alpha * se / math.log(ctx.group_size))


@register_uncertainty("gcpo", needs_embeddings=True)
def _gcpo(ctx: GroupContext) -> Uncertainty:
    """GCPO: calibrated geometric uncertainty U in [0, 1], x = alpha * U. [recon]"""
    gcpo = ctx.algo.gcpo
    u = gcpo_uncertainty(ctx.embeddings, ctx.rewards, measure=gcpo.measure, kappa=gcpo.kappa)
    return Uncertainty(u, ctx.algo.alpha * u)
