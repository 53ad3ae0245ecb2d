"""The cost of math-verify clustering: parse once, bounded checks, a time budget per group.

Finding: greedy clustering compared each new answer with every representative, about 1 s per
slow pair, so G distinct slow answers cost G(G-1)/2 seconds (120 s at G = 16). The budget logic
is tested exactly with a clock the test advances; the bounds are then checked with real
math-verify, in this process and through the verifier's worker, on exponent towers that keep
math-verify busy until its 1 s alarm.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from seedgrpo.algorithms.clustering import (
    MAX_FAILED_CHECKS,
    cluster_by_equivalence,
    cluster_group,
)
from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.rewards import Verifier
from seedgrpo.rewards.verifier import MIN_CALL_S
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.scoring import score_batch

# k^{k^{k^{k}}}: parses in milliseconds, but any two of them keep math-verify's verify busy
# until its alarm (about 1 s per pair, measured), as do they against a plain gold answer.
SLOW = [f"{k}^{{{k}^{{{k}^{{{k}}}}}}}" for k in range(3, 19)]


class SteppedClock:
    """A clock that moves only when the test says: each slow check costs exactly 1 s."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def table_check(clock: SteppedClock, slow: set[str], same: set[frozenset[str]]):
    """parse/equivalent over plain strings: pairs in ``same`` match, a pair touching ``slow``
    reaches no verdict after 1 s of the clock, anything else is "different" at once."""
    parsed: list[str] = []
    calls: list[tuple[str, str]] = []

    def parse(text: str, left: float) -> str | None:
        parsed.append(text)
        return None if text == "???" else text

    def equivalent(a: str, b: str, left: float) -> bool | None:
        assert left > 0
        calls.append((a, b))
        if a in slow or b in slow:
            clock.now += 1.0
            return None
        return frozenset((a, b)) in same or a == b

    return parse, equivalent, parsed, calls


def test_identical_answers_are_free_and_each_distinct_one_is_parsed_once() -> None:
    clock = SteppedClock()
    parse, equivalent, parsed, calls = table_check(clock, set(), {frozenset(("1/2", "0.5"))})
    answers = ["1/2", "0.5", " 1/2", "3", "3", None, "0.5 ", "4", "1 / 2"]
    result = cluster_by_equivalence(answers, parse=parse, equivalent=equivalent,
                                    budget_s=5.0, clock=clock)
    assert result.ids == [0, 0, 0, 1, 1, 2, 0, 3, 0]
    assert sorted(parsed) == sorted(["1/2", "0.5", "3", "4"])  # "1 / 2" is "1/2" without spaces
    assert calls == [("1/2", "0.5"), ("1/2", "3"), ("1/2", "4"), ("3", "4")]
    s = result.stats
    assert (s.distinct, s.parses, s.verify_calls, s.budget_exceeded, s.fallback_answers) == (
        4, 4, 4, False, 0)


def test_one_distinct_answer_needs_no_parse() -> None:
    clock = SteppedClock()
    parse, equivalent, parsed, calls = table_check(clock, set(), set())
    result = cluster_by_equivalence(["7", " 7", None], parse=parse, equivalent=equivalent,
                                    clock=clock)
    assert result.ids == [0, 0, 1]
    assert parsed == [] and calls == []


def test_the_budget_sends_the_rest_of_the_group_to_exact_matching() -> None:
    """Every pair is slow (1 s on the clock); the budget is 3.5 s."""
    clock = SteppedClock()
    parse, equivalent, parsed, calls = table_check(clock, set(SLOW), set())
    answers = SLOW + SLOW[:3]  # repeats of the first three still join their own clusters
    result = cluster_by_equivalence(answers, parse=parse, equivalent=equivalent,
                                    budget_s=3.5, clock=clock)
    assert result.ids == list(range(16)) + [0, 1, 2]
    s = result.stats
    # a0 rep | a1 vs a0 (1 s) | a2 vs a0 (2 s, a0 out), vs a1 (3 s, a1 out, a2 out: 2 strikes)
    # | a3 becomes a rep with nothing to compare | a4 vs a3 (4 s): no verdict, a4 becomes a
    # rep | budget spent -> a5..a15 fall back: 11 answers
    assert calls == [(SLOW[0], SLOW[1]), (SLOW[0], SLOW[2]), (SLOW[1], SLOW[2]),
                     (SLOW[3], SLOW[4])]
    assert s.budget_exceeded is True
    assert s.fallback_answers == 11
    assert s.parses == 5 and len(set(parsed)) == len(parsed)
    assert s.unverifiable == 3
    assert s.seconds == 4.0


def test_no_parse_and_no_check_after_the_budget_is_spent() -> None:
    clock = SteppedClock()
    parse, equivalent, parsed, calls = table_check(clock, set(), set())

    def slow_parse(text: str, left: float) -> str | None:
        clock.now += 2.0
        return parse(text, left)

    result = cluster_by_equivalence(["1", "2", "3", "4"], parse=slow_parse,
                                    equivalent=equivalent, budget_s=3.0, clock=clock)
    # "1" parsed by 102; "2" parsed by 104, past the deadline (103): no check, and it falls
    # back with "3" and "4", which are not even parsed
    assert result.ids == [0, 1, 2, 3]
    assert parsed == ["1", "2"] and calls == []
    assert result.stats.fallback_answers == 3


def test_one_slow_partner_does_not_cut_an_honest_answer_off() -> None:
    """A slow representative fails once with "2"; "2" still becomes a representative, and the
    slow one leaves after its second failure, so "2.0" still finds "2"."""
    clock = SteppedClock()
    parse, equivalent, _, calls = table_check(clock, {SLOW[0]}, {frozenset(("2", "2.0"))})
    result = cluster_by_equivalence([SLOW[0], "2", "2.0", "5"], parse=parse,
                                    equivalent=equivalent, clock=clock)
    assert result.ids == [0, 1, 1, 2]
    assert calls == [(SLOW[0], "2"), (SLOW[0], "2.0"), ("2", "2.0"), ("2", "5")]
    assert result.stats.unverifiable == 1  # the slow one, after MAX_FAILED_CHECKS failures
    assert MAX_FAILED_CHECKS == 2


def test_an_unparsed_answer_is_compared_by_exact_string() -> None:
    clock = SteppedClock()
    parse, equivalent, _, calls = table_check(clock, set(), set())
    result = cluster_by_equivalence(["???", "1", "???", "2"], parse=parse,
                                    equivalent=equivalent, clock=clock)
    assert result.ids == [0, 1, 0, 2]
    assert calls == [("1", "2")]
    assert result.stats.unverifiable == 1


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget_s is 0; it must be > 0 seconds"):
        cluster_group(["1", "2"], "math_verify", budget_s=0)


# -- real math-verify ---------------------------------------------------------------------------


def _in_process_math_verify():
    """math-verify's own parse and verify in this (main) thread, the parse counted."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    parsed: Counter[str] = Counter()

    def counted_parse(text: str, left: float):
        parsed[text] += 1
        try:
            result = parse("\\boxed{" + text + "}", extraction_config=extraction,
                           parsing_timeout=max(1, int(left)), raise_on_error=True)
        except (Exception, TimeoutException):
            return None
        return result or None

    def check(gold, pred, left: float) -> bool | None:
        try:
            return bool(verify(gold, pred, timeout_seconds=max(1, int(left)),
                               raise_on_error=True))
        except (Exception, TimeoutException):
            return None

    return counted_parse, check, parsed


def test_real_math_verify_on_sixteen_slow_answers_stays_within_the_budget() -> None:
    parse, check, parsed = _in_process_math_verify()
    budget = 3.0
    start = time.monotonic()
    result = cluster_by_equivalence(SLOW, parse=parse, equivalent=check, budget_s=budget)
    elapsed = time.monotonic() - start
    s = result.stats
    # Each check is cut to the budget left (math-verify's alarm has 1 s steps): one check over.
    assert elapsed < budget + 1.0 + 1.0, f"{elapsed:.1f} s"
    assert result.ids == list(range(16))
    assert s.budget_exceeded and s.fallback_answers >= 8, s
    assert s.verify_calls <= 16 * 15 // 2
    assert max(parsed.values()) == 1 and sum(parsed.values()) == s.parses <= 16


def test_real_math_verify_still_merges_honest_answers() -> None:
    parse, check, parsed = _in_process_math_verify()
    answers = ["1/2", "0.5", "\\frac{1}{2}", "3", " 3", "x+1", "1+x", "2^{10}", "1024"]
    result = cluster_by_equivalence(answers, parse=parse, equivalent=check, budget_s=30.0)
    assert result.ids == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert not result.stats.budget_exceeded
    assert sorted(parsed) == sorted(set(a.strip() for a in answers)) and max(
        parsed.values()) == 1


@pytest.fixture(scope="module")
def verifier():
    v = Verifier()
    v.equivalent("1", "1")  # start the worker before anything is timed
    yield v
    v.close()


def test_worker_clustering_of_sixteen_slow_answers_stays_within_the_budget(verifier) -> None:
    """Through the verifier's worker process, as the scorer runs it."""
    budget = 3.0
    parses_before = verifier.counters.parses
    start = time.monotonic()
    result = cluster_group(SLOW, "math_verify",
                           equivalence=verifier.answer_equivalence(), budget_s=budget)
    elapsed = time.monotonic() - start
    s = result.stats
    # the last check's hard bound is at least MIN_CALL_S; 1 s more for a loaded machine
    assert elapsed < budget + MIN_CALL_S + 1.0, f"{elapsed:.1f} s, {s}"
    assert result.ids == list(range(16))
    assert s.budget_exceeded and s.fallback_answers >= 8, s
    assert s.verify_calls <= 16 * 15 // 2
    # the worker parsed each distinct answer once: the checks reused the parses
    assert verifier.counters.parses - parses_before == s.parses <= 16


def test_worker_parses_each_distinct_answer_once_and_caches_verdicts(verifier) -> None:
    answers = ["1/2", "0.5", "\\frac{1}{2}", "3", "3.0", "x+1", "1+x", " 1/2", "0.5"]
    before = verifier.counter_values()
    result = cluster_group(answers, "math_verify",
                           equivalence=verifier.answer_equivalence(), budget_s=30.0)
    assert result.ids == [0, 0, 0, 1, 1, 2, 2, 0, 0]
    after = verifier.counter_values()
    assert after["parses"] - before["parses"] == result.stats.parses == 7
    # the same group again: every verdict is cached, nothing is parsed or checked again
    again = cluster_group(answers, "math_verify",
                          equivalence=verifier.answer_equivalence(), budget_s=30.0)
    assert again.ids == result.ids
    final = verifier.counter_values()
    assert final["parses"] == after["parses"]
    assert final["cache_hits"] - after["cache_hits"] == again.stats.verify_calls > 0


def test_a_text_that_failed_to_parse_fails_closed_at_once_afterwards() -> None:
    verifier = Verifier(timeout_s=5.0)
    slow_parse = "x^" * 300 + "2"  # math-verify's parse hits its 1 s alarm
    verifier.equivalent("1", "1")
    assert verifier.parse(slow_parse) is False
    assert verifier.counters.errors == 1
    start = time.monotonic()
    assert verifier.compare("1", slow_parse) is None
    assert verifier.compare(slow_parse, "2") is None
    assert time.monotonic() - start < 0.5
    assert verifier.counters.cache_hits == 2
    assert verifier.counters.errors == 3  # still counted: answers that were not judged
    verifier.close()


def test_a_slow_pair_costs_its_second_of_math_verify_once(verifier) -> None:
    """Rewards of a group that repeats a slow answer: one check, the rest replay it."""
    before = verifier.counter_values()
    start = time.monotonic()
    assert verifier.compare("1", SLOW[5]) is None  # math-verify's alarm: about 1 s
    first = time.monotonic() - start
    assert verifier.compare("1", SLOW[5]) is None
    assert time.monotonic() - start - first < 0.1
    after = verifier.counter_values()
    assert after["errors"] - before["errors"] == 2
    assert after["cache_hits"] - before["cache_hits"] == 1


def test_the_step_metrics_count_the_budget() -> None:
    """score_batch: one hostile group spends its budget, one honest group does not. A fresh
    verifier: a shared one may have cached these slow pairs' verdicts, which makes them free."""
    verifier = Verifier()
    algo = AlgorithmConfig(clustering="math_verify", clustering_budget_s=1.5,
                           estimator="discrete")
    hostile = [Completion([0], f"\\boxed{{{a}}}", [-1.0], truncated=False) for a in SLOW[:4]]
    honest = [Completion([0], f"\\boxed{{{a}}}", [-1.0], truncated=False)
              for a in ["1", "1.0", "2", "2"]]
    scored = score_batch([hostile, honest], ["1", "1"], algo, verifier=verifier)
    m = scored.metrics
    assert m["reward/verify_budget_exceeded"] == 1.0
    assert m["reward/verify_fallback_answers"] >= 2.0
    assert m["reward/verify_cluster_calls"] >= 2.0  # 1 honest check, at least 1 hostile one
    assert m["reward/cluster_distinct_answers"] == 4.0 + 3.0  # "1" and "1.0" are two strings
    assert 1.0 <= m["reward/verify_cluster_parses"] <= 7.0
    assert m["time/cluster_s"] >= 1.5  # the hostile group spent its whole budget
    assert scored.scores[1].cluster_ids == [0, 0, 1, 1]
    assert scored.scores[0].rewards == [0.0] * 4
    verifier.close()
