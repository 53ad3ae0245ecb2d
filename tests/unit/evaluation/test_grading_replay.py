r"""The replay check: the grader against every row of the five real benchmark files.

For every row, a completion stating the gold answer in ``\boxed{}`` must be graded correct; for
a seeded sample of rows, so must the gold answer written another, equivalent way; and a
completion stating *another row's* answer must be graded wrong, except where the two answers are
equal. The rows the grader cannot handle are pinned below with the reason, so the list can only
change on purpose (and docs/EVALUATION.md's "Grading" section reports them).
"""

from __future__ import annotations

import random
import re

import pytest

from seedgrpo.data import GoldAnswer
from seedgrpo.evaluation import BENCHMARK_SPECS, Grader, load_benchmark
from seedgrpo.evaluation.grading import as_number, split_top_level
from seedgrpo.rewards import Verifier

# rows whose gold answer the grader cannot recognise, even stated verbatim: {id: why}
GOLD_NOT_RECOGNISED: dict[str, str] = {}

# (gold, other row's answer) pairs graded equal although the strings differ: each is a real
# equality (the same value written differently), checked by eye
EQUAL_ACROSS_ROWS: set[tuple[str, str]] = {
    ("5", "x=5"),  # math500 test/algebra/1837 and its neighbour: the same value
}

SAMPLE_PER_BENCHMARK = 40


def equivalent_form(gold: GoldAnswer, rule: str) -> str | None:
    """The gold answer written another way that a grader must still accept (None: no form)."""
    value = as_number(gold.answer)
    text = gold.answer
    if value is not None and rule == "integer":
        return f"{int(value):03d}" if value == int(value) and value >= 0 else f"{value}"
    if value is not None and rule == "physical" and value != 0:
        mantissa, exponent = f"{value:.6e}".split("e")
        form = f"{mantissa} \\times 10^{{{int(exponent)}}}"
        return form + (f" \\text{{ {gold.unit.strip('$')}}}" if gold.unit else "")
    if value is not None:
        return f"{value:g}.0" if value == int(value) and abs(value) < 1e15 else None
    if "\\frac" in text:
        return text.replace("\\frac", "\\dfrac")
    parts = split_top_level(text)
    if len(parts) > 1 and all(parts):
        return ", ".join(reversed(parts))
    return None


def _plainly_equal(a: str, b: str) -> bool:
    squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    na, nb = as_number(a), as_number(b)
    return squash(a) == squash(b) or (na is not None and na == nb)


@pytest.fixture(scope="module")
def grader_by_rule():
    """Errors raise (a broken check must not pass as "wrong"); math-verify's own alarm is
    raised to 30 s, since on a loaded 2-core machine a slow comparison is not a wrong answer:
    minerva_math-131 against its neighbour (two differential equations) takes 6 s on an idle
    machine here and went past a 10 s alarm in CI."""
    verifier = Verifier(timeout_s=90, raise_on_error=True)
    yield {rule: Grader(rule, verifier=verifier) for rule in ("integer", "math", "physical")}
    verifier.close()


# minerva_math and olympiadbench hold the slow rows (differential equations, long intervals)
SLOW_REPLAYS = {"minerva_math", "olympiadbench"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_REPLAYS else name
    for name in BENCHMARK_SPECS])
def test_replay_every_row(name, shared_data, grader_by_rule):
    bench = load_benchmark(name, data_dir=str(shared_data))
    spec = BENCHMARK_SPECS[name]
    assert len(bench.problems) == spec.size
    grader = grader_by_rule[bench.grading]

    unrecognised = {p.id: p.gold.answer for p in bench.problems
                    if not grader.grade(f"The answer is \\boxed{{{p.gold.answer}}}.",
                                        p.gold).correct}
    assert unrecognised.keys() == {i for i in GOLD_NOT_RECOGNISED if i in
                                   {p.id for p in bench.problems}}, unrecognised

    rng = random.Random(f"replay:{name}")
    failed_forms = {}
    for p in rng.sample(bench.problems, min(SAMPLE_PER_BENCHMARK, len(bench.problems))):
        form = equivalent_form(p.gold, bench.grading)
        if form is None or p.id in GOLD_NOT_RECOGNISED:
            continue
        if not grader.grade(f"\\boxed{{{form}}}", p.gold).correct:
            failed_forms[p.id] = (p.gold.answer, form)
    assert not failed_forms, failed_forms

    wrongly_equal = {}
    for i, p in enumerate(bench.problems):
        other = bench.problems[(i + 1) % len(bench.problems)].gold.answer
        if _plainly_equal(p.gold.answer, other):
            continue
        if grader.grade(f"\\boxed{{{other}}}", p.gold).correct and (
                (p.gold.answer, other) not in EQUAL_ACROSS_ROWS):
            wrongly_equal[p.id] = (p.gold.answer, other)
    assert not wrongly_equal, wrongly_equal
