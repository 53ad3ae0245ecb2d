"""Meaning clusters: which of a group's G final answers say the same thing.

docs/ALGORITHMS.md section 2, step 3. ``exact`` is the paper's rule ([3p]: whitespace-free string
equality); ``math_verify`` (ours, recommended) merges answers that math-verify finds equivalent,
so ``1/2``, ``0.5`` and ``\\frac{1}{2}`` share one cluster. A response without an answer is a
cluster of its own ([3p]), which makes unanswered groups maximally uncertain.

Greedy clustering compares each new answer with every cluster's representative, so G distinct
answers cost up to G(G-1)/2 checks, and a slow pair costs about a second (math-verify's own
alarm). ``cluster_by_equivalence`` bounds that: identical strings are merged for free, each
distinct answer is parsed once, an answer math-verify cannot handle is compared by exact string
from then on, and once the group's time budget is spent the remaining answers fall back to
exact matching. What it cost is returned as ``ClusterStats`` and logged as ``reward/verify_*``.

This module stays pure: it never starts math-verify itself. The caller injects the equivalence
test as callables (``AnswerEquivalence``); the trainer's scorer passes its verifier's
(``seedgrpo.rewards.Verifier.answer_equivalence``), and evaluation passes its grader's rule to
``cluster_by_equivalence`` directly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from seedgrpo.algorithms._checks import check_group
from seedgrpo.algorithms.registry import Registry

__all__ = ["CLUSTERINGS", "DEFAULT_BUDGET_S", "MAX_FAILED_CHECKS", "AnswerEquivalence",
           "ClusterStats", "Clustering", "cluster_answers", "cluster_by_equivalence",
           "cluster_group"]

DEFAULT_BUDGET_S = 5.0  # per group; honest groups of 16 answers need well under a second
MAX_FAILED_CHECKS = 2  # checks without a verdict before an answer is compared by exact string

Clock = Callable[[], float]
ParsedT = TypeVar("ParsedT")


@dataclass
class ClusterStats:
    """What clustering one group cost. Distinct answers are counted after whitespace removal."""

    distinct: int = 0
    parses: int = 0  # parse calls: at most one per distinct answer
    verify_calls: int = 0  # equivalence checks: at most distinct * (distinct - 1) / 2
    unverifiable: int = 0  # compared by exact string: unparsed, or MAX_FAILED_CHECKS failures
    fallback_answers: int = 0  # compared by exact string because the budget was spent
    budget_exceeded: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Clustering:
    """Cluster id per answer (0, 1, ... in order of first appearance) and what it cost."""

    ids: list[int]
    stats: ClusterStats = field(default_factory=ClusterStats)


@dataclass(frozen=True)
class AnswerEquivalence:
    """The equivalence test a ``math_verify`` clustering runs, injected by the caller.

    Both take the seconds left of the group's budget, so one slow call cannot overrun it by
    more than the callee's own minimum bound. ``parse(text, seconds_left)``: whether ``text``
    holds an expression (the callee may keep the parse for later checks);
    ``equivalent(representative, new, seconds_left)``: True or False, or None when no verdict
    was reached (an error, a timeout). A ``Verifier`` builds one with ``answer_equivalence()``.
    """

    parse: Callable[[str, float], bool]
    equivalent: Callable[[str, str, float], bool | None]


ClusterFn = Callable[[Sequence[str | None], AnswerEquivalence | None, float, Clock], Clustering]
CLUSTERINGS: Registry[ClusterFn] = Registry("clustering method")

_WHITESPACE = re.compile(r"\s+")


def _normalise(answer: str) -> str:
    return _WHITESPACE.sub("", answer.strip())


@CLUSTERINGS.register("exact")
def _cluster_exact(answers: Sequence[str | None], equivalence: AnswerEquivalence | None,
                   budget_s: float, clock: Clock) -> Clustering:
    """Cluster by string equality after removing all whitespace. [3p]"""
    ids: list[int] = []
    seen: dict[str, int] = {}
    next_id = 0
    for answer in answers:
        if answer is None:
            ids.append(next_id)
            next_id += 1
            continue
        key = _normalise(answer)
        if key not in seen:
            seen[key] = next_id
            next_id += 1
        ids.append(seen[key])
    return Clustering(ids, ClusterStats(distinct=len(seen)))


def cluster_by_equivalence(
    answers: Sequence[str | None], *,
    parse: Callable[[str, float], ParsedT | None],
    equivalent: Callable[[ParsedT, ParsedT, float], bool | None],
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Clock = time.monotonic,
) -> Clustering:
    """Greedy clustering by an equivalence check, within a time budget for the whole group.

    Answers that are equal without whitespace share a cluster without any check. Each other
    (distinct) answer is parsed once, as written (removing spaces can change LaTeX: ``\\cdot x``
    is not ``\\cdotx``), then checked against one representative per cluster in creation order,
    representative first (math-verify's ``verify`` is asymmetric: gold first), and joins the
    first match. ``parse(text, seconds_left)`` returns None when the text has no expression;
    ``equivalent(rep, new, seconds_left)`` returns None when it reached no verdict (an error or
    a timeout), which counts as "different". An answer that did not parse, or that reached no
    verdict ``MAX_FAILED_CHECKS`` times, is compared by exact string from then on: a hostile
    answer costs a bounded number of checks, and one slow partner does not cut an honest answer
    off. When ``budget_s`` is spent (read from ``clock`` before every call) the remaining
    distinct answers each get their own cluster, which is exact matching. [ours]

    >>> verdicts = {("1/2", "0.5"): True}
    >>> result = cluster_by_equivalence(
    ...     ["1/2", "0.5", " 1/2 ", "3", None], parse=lambda text, left: text,
    ...     equivalent=lambda a, b, left: verdicts.get((a, b), False))
    >>> result.ids, result.stats.parses, result.stats.verify_calls
    ([0, 0, 0, 1, 2], 3, 2)
    """
    stats = ClusterStats()
    start = clock()
    deadline = start + budget_s
    keys = {_normalise(a) for a in answers if a is not None}
    compare_any = len(keys) > 1  # one distinct answer needs no parse at all
    cluster_of: dict[str, int] = {}
    reps: dict[int, ParsedT] = {}  # comparable representatives, in creation order
    failures: dict[int, int] = {}  # cluster id -> checks without a verdict (its representative)
    ids: list[int] = []
    next_id = 0
    parsed: ParsedT | None = None  # the answer being placed, once parsed
    own_failures = 0  # its checks without a verdict so far

    def time_left() -> float:
        left = deadline - clock()
        if left <= 0:
            stats.budget_exceeded = True
        return left

    def place(text: str) -> int | None:
        """The cluster ``text`` joins, or None for a new one (made comparable when it can be)."""
        nonlocal parsed, own_failures
        left = time_left()
        if not compare_any or left <= 0:
            return None
        stats.parses += 1
        parsed = parse(text, left)
        if parsed is None:
            stats.unverifiable += 1
            return None
        for rep_id, rep in list(reps.items()):
            left = time_left()
            if left <= 0:
                return None
            stats.verify_calls += 1
            verdict = equivalent(rep, parsed, left)
            if verdict:
                return rep_id
            if verdict is None:
                failures[rep_id] += 1
                if failures[rep_id] >= MAX_FAILED_CHECKS:
                    del reps[rep_id]
                    stats.unverifiable += 1
                own_failures += 1
                if own_failures >= MAX_FAILED_CHECKS:
                    stats.unverifiable += 1
                    return None
        return None

    for answer in answers:
        if answer is None:
            ids.append(next_id)
            next_id += 1
            continue
        key = _normalise(answer)
        if key not in cluster_of:
            stats.distinct += 1
            parsed, own_failures = None, 0
            match = None if stats.budget_exceeded else place(answer.strip())
            if match is None:
                match, next_id = next_id, next_id + 1
                if stats.budget_exceeded:
                    stats.fallback_answers += 1
                elif parsed is not None and own_failures < MAX_FAILED_CHECKS:
                    reps[match], failures[match] = parsed, own_failures
            cluster_of[key] = match
        ids.append(cluster_of[key])
    stats.seconds = clock() - start
    return Clustering(ids, stats)


@CLUSTERINGS.register("math_verify")
def _cluster_math_verify(answers: Sequence[str | None], equivalence: AnswerEquivalence | None,
                         budget_s: float, clock: Clock) -> Clustering:
    """``cluster_by_equivalence`` with the injected math-verify test. With the verifier's
    (``Verifier.answer_equivalence``) each check's hard bound is cut to what is left of the
    budget, so a hostile group overruns it by at most one short call (``MIN_CALL_S``); its worker
    parses each text once and keeps it, and the verifier caches pair verdicts and texts that
    failed to parse across groups. [ours]"""
    if equivalence is None:
        raise ValueError("clustering 'math_verify' needs an equivalence test: pass "
                         "equivalence=Verifier().answer_equivalence() (seedgrpo.rewards)")
    has_expression = equivalence.parse

    def parse(text: str, seconds_left: float) -> str | None:
        return text if has_expression(text, seconds_left) else None

    return cluster_by_equivalence(answers, parse=parse, equivalent=equivalence.equivalent,
                                  budget_s=budget_s, clock=clock)


def cluster_group(answers: Sequence[str | None], method: str = "exact", *,
                  equivalence: AnswerEquivalence | None = None,
                  budget_s: float = DEFAULT_BUDGET_S,
                  clock: Clock = time.monotonic) -> Clustering:
    """``cluster_answers`` with what it cost (``ClusterStats``), for scorers that log it.

    >>> cluster_group(["1", " 1", "2"]).stats.distinct
    2
    """
    if isinstance(answers, str):
        raise ValueError("answers must be a sequence of answers (str or None), not one string")
    answers = list(answers)  # a generator would be used up by the checks below
    check_group(len(answers), name="answers")
    for i, answer in enumerate(answers):
        if answer is not None and not isinstance(answer, str):
            raise ValueError(f"answers[{i}] is {type(answer).__name__}; expected str or None")
    if not budget_s > 0:
        raise ValueError(f"budget_s is {budget_s}; it must be > 0 seconds")
    return CLUSTERINGS.get(method)(answers, equivalence, budget_s, clock)


def cluster_answers(answers: Sequence[str | None], method: str = "exact", *,
                    equivalence: AnswerEquivalence | None = None,
                    budget_s: float = DEFAULT_BUDGET_S,
                    clock: Clock = time.monotonic) -> list[int]:
    """Cluster id per answer, numbered 0, 1, ... in order of first appearance.

    ``exact``: strip, remove all whitespace, compare strings. ``math_verify``: equivalent under
    the injected ``equivalence`` (required; e.g. ``Verifier().answer_equivalence()``), within
    ``budget_s`` seconds for the whole group (``cluster_by_equivalence``). ``None`` answers
    each get their own cluster.

    >>> cluster_answers(["1/2", " 1 / 2", None, "3", None])
    [0, 0, 1, 2, 3]
    """
    return cluster_group(answers, method, equivalence=equivalence, budget_s=budget_s,
                         clock=clock).ids
