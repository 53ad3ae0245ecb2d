"""math_reward on real benchmark rows, on hostile strings, and from non-main threads.

Real math-verify runs in the verifier's worker process: nothing here is mocked.
"""

from __future__ import annotations

import threading
import time

import pytest

from seedgrpo.rewards import Verifier, VerifyError, math_reward

# (file, row id, equivalent ways a model could box the gold answer)
EQUIVALENT_FORMS = [
    ("aime24", "aime24-78", ["023", "23", "23.0"]),  # AIME leading zeros: compare as integers
    ("aime24", "aime24-85", ["080", "80"]),
    ("amc23", "amc23-0", ["27", "27.0", "\\frac{54}{2}"]),  # AMC answers stored as numbers
    ("math500", "test/algebra/2584.json", ["\\frac{14}{3}", "14/3", "\\dfrac{14}{3}"]),
    ("math500", "test/number_theory/410.json", [".35625", "0.35625", "\\frac{57}{160}"]),
    ("math500", "test/algebra/2036.json", ["3\\sqrt{13}", "\\sqrt{117}", "3 \\sqrt{13}"]),
    ("math500", "test/precalculus/807.json", ["\\left( 3, \\frac{\\pi}{2} \\right)",
                                              "(3, \\frac{\\pi}{2})", "(3,\\pi/2)"]),
    ("minerva_math", "minerva_math-0", ["1.6", "1.60", "\\frac{8}{5}"]),
    ("olympiadbench", "olympiadbench-2978", ["\\frac{9}{32}", "9/32", "0.28125"]),
    ("olympiadbench", "olympiadbench-1612", ["2^{1009}"]),
]

WRONG = [
    ("aime24", "aime24-78", ["24", "230", "0.23"]),
    ("amc23", "amc23-0", ["26", "27.5"]),
    ("math500", "test/algebra/2584.json", ["\\frac{3}{14}", "4.67"]),
    ("math500", "test/precalculus/807.json", ["(3, \\pi)", "(\\frac{\\pi}{2}, 3)"]),
    ("olympiadbench", "olympiadbench-2978", ["\\frac{9}{31}"]),
]


@pytest.mark.parametrize(("bench", "row_id", "forms"), EQUIVALENT_FORMS)
def test_gold_in_equivalent_forms_scores_one(load_rows, strict_verifier, bench, row_id, forms):
    gold = load_rows(bench)[row_id]["answer"]
    for form in forms:
        completion = f"Let me work it out... so the answer is $\\boxed{{{form}}}$."
        assert math_reward(completion, gold, verifier=strict_verifier) == 1.0, (form, gold)


@pytest.mark.parametrize(("bench", "row_id", "answers"), WRONG)
def test_wrong_answers_score_zero(load_rows, strict_verifier, bench, row_id, answers):
    gold = load_rows(bench)[row_id]["answer"]
    for answer in answers:
        assert math_reward(f"\\boxed{{{answer}}}", gold, verifier=strict_verifier) == 0.0


@pytest.mark.parametrize("bench", ["aime24", "amc23", "math500", "minerva_math", "olympiadbench"])
def test_first_rows_replay(load_rows, strict_verifier, bench):
    """Gold in a box scores 1 and a different row's (different) answer scores 0."""
    rows = list(load_rows(bench).values())[:8]
    for row, other in zip(rows, rows[1:] + rows[:1], strict=True):
        assert math_reward(f"\\boxed{{{row['answer']}}}", row["answer"],
                           verifier=strict_verifier) == 1.0, row["id"]
        if other["answer"].replace(" ", "") != row["answer"].replace(" ", ""):
            assert math_reward(f"\\boxed{{{other['answer']}}}", row["answer"],
                               verifier=strict_verifier) == 0.0, (row["id"], other["id"])


def test_no_box_scores_zero_without_calling_math_verify() -> None:
    verifier = Verifier()
    assert math_reward("The answer is 23.", "023", verifier=verifier) == 0.0
    assert math_reward("\\boxed{}", "023", verifier=verifier) == 0.0
    assert verifier.counters.checks == 0
    verifier.close()


def test_reward_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="gold_answer is empty"):
        math_reward("\\boxed{1}", "  ")
    with pytest.raises(ValueError, match="must both be str"):
        math_reward(None, "1")  # type: ignore[arg-type]


# (label, completion, how it must end: a counter name, or "slow" = math-verify's own
# alarm (errors) or the hard bound (timeouts), whichever fires first on this machine)
HOSTILE = [
    ("deep nesting", "\\boxed{" + "{" * 5_000 + "1" + "}" * 5_000 + "}", "refused"),
    ("megabyte answer", "\\boxed{" + "1+" * 500_000 + "1}", "refused"),
    ("tower of powers", "\\boxed{2^{2^{2^{2^{2^{100}}}}}}", "slow"),
    ("huge factorial", "\\boxed{(10^{10})!}", "slow"),
    ("many fractions", "\\boxed{" + "\\frac{1}{" * 30 + "2" + "}" * 30 + "}", "slow"),
]


@pytest.mark.parametrize(("label", "completion", "counter"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_answers_score_zero_within_the_bound(label, completion, counter) -> None:
    verifier = Verifier(timeout_s=3.0)
    start = time.monotonic()
    assert math_reward(completion, "1", verifier=verifier) == 0.0
    elapsed = time.monotonic() - start
    # The hard bound is 3 s per check plus a worker (re)start; 30 s is far above any honest run.
    assert elapsed < 30.0, f"{label} took {elapsed:.1f} s"
    c = verifier.counters
    if counter == "slow":
        assert c.errors + c.timeouts == 1, verifier.counter_values()
    else:
        assert getattr(c, counter) == 1, verifier.counter_values()
    # the verifier still works afterwards
    assert math_reward("\\boxed{1}", "1", verifier=verifier) == 1.0
    verifier.close()


# The hostile-completions figure: every one is scored by the real math_reward, stays 0 or 1,
# and returns within the verifier's hard bound (5 s) plus a worker restart.
_B = "\\boxed{"
HOSTILE_COMPLETIONS = [  # (label, completion, expected reward against gold "1"; None: 0 or 1)
    # size
    ("megabyte of text, no box", "a" * 1_000_000, 0.0),
    ("megabyte answer", _B + "1+" * 500_000 + "1}", 0.0),
    ("megabyte before a right answer", "x" * 1_000_000 + _B + "1}", 1.0),
    ("2,000-digit integer", _B + "9" * 1_999 + "}", 0.0),
    ("answer one char over the limit", _B + "1" * 2_001 + "}", 0.0),
    ("ten thousand boxes, last one right", (_B + "2}") * 10_000 + _B + "1}", 1.0),
    ("ten thousand unclosed boxes", _B * 10_000, 0.0),
    ("box inside box inside box", _B * 50 + "1" + "}" * 50, 1.0),  # the innermost box
    # nesting and braces
    ("5,000 nested braces", _B + "{" * 5_000 + "1" + "}" * 5_000 + "}", 0.0),
    ("39 nested braces", _B + "{" * 39 + "1" + "}" * 39 + "}", None),
    ("unbalanced open braces", _B + "{{{1}", 0.0),
    ("unbalanced close braces", _B + "1}}}}}", 1.0),
    ("escaped braces only", _B + "\\{\\{\\}}", 0.0),
    ("thirty nested fractions", _B + "\\frac{1}{" * 30 + "2" + "}" * 30 + "}", None),
    ("parenthesis flood", _B + "(" * 500 + "1" + ")" * 500 + "}", 0.0),
    ("left-right flood", _B + "\\left(" * 200 + "1" + "\\right)" * 200 + "}", 0.0),
    ("sin of sin flood", _B + "\\sin(" * 300 + "x" + ")" * 300 + "}", 0.0),
    ("x^x^...^2 tower (slow parse)", _B + "x^" * 300 + "2}", 0.0),
    ("900-term sum", _B + "+".join(["x"] * 900) + "}", 0.0),
    # arithmetic that never ends
    ("tower of powers", _B + "2^{2^{2^{2^{2^{100}}}}}}", 0.0),
    ("9^9^9^9", _B + "9^{9^{9^{9}}}}", 0.0),
    ("huge factorial", _B + "(10^{10})!}", 0.0),
    ("huge binomial", _B + "\\binom{10^{7}}{5000}}", 0.0),
    ("power of a googolplex", _B + "10^{10^{100}}}", 0.0),
    ("factorial chain", _B + "9!!!!!!!!!!!!!!!!!!!!!!!!}", 0.0),
    ("sqrt tower", _B + "\\sqrt{2}^{\\sqrt{2}^{\\sqrt{2}^{1000}}}}", 0.0),
    ("sum to a googol", _B + "\\sum_{k=1}^{10^{100}} k}", 0.0),
    ("integral of e^{x^2}", _B + "\\int_0^{10^{9}} e^{x^2} dx}", 0.0),
    ("limit", _B + "\\lim_{n\\to\\infty} (1+1/n)^{n^{n}}}", 0.0),
    # values that are not numbers
    ("division by zero", _B + "\\frac{1}{0}}", 0.0),
    ("zero to the zero", _B + "0^0}", None),  # sympy says 1
    ("infinity", _B + "\\infty}", 0.0),
    ("nan", _B + "nan}", 0.0),
    ("1e999999", _B + "1e999999}", 0.0),
    ("imaginary unit", _B + "\\sqrt{-1}}", 0.0),
    # code and TeX that must only ever be parsed
    ("\\input{/etc/passwd}", _B + "\\input{/etc/passwd}}", 0.0),
    ("\\include and \\write18", _B + "\\immediate\\write18{rm -rf /}\\include{x}}", 0.0),
    ("recursive macro", _B + "\\def\\a{\\a\\a}\\a}", 0.0),
    ("newcommand", _B + "\\newcommand{\\one}{1}\\one}", None),
    ("python import", _B + "__import__('os').system('touch /tmp/pwned')}", 0.0),
    ("python exec", _B + "exec(\"import os; os._exit(1)\")}", 0.0),
    ("python lambda bomb", _B + "(lambda f: f(f))(lambda f: f(f))}", 0.0),
    ("sympy-looking call", _B + "Integer(1).__class__.__mro__}", 0.0),
    ("eval of a power", _B + "eval('9**9**9')}", 0.0),
    # bytes and unicode
    ("NUL bytes around a right answer", "\x00" * 1_000 + _B + "1}" + "\x00" * 1_000, 1.0),
    ("NUL inside the answer", _B + "1\x00}", None),
    ("lone surrogate", _B + "\ud800}", 0.0),
    ("right-to-left override", _B + "\u202e1}", None),
    ("fullwidth one", _B + "\uff11}", None),
    ("Cyrillic x equals one", _B + "\u0445=1}", None),  # math-verify reads the right side
    ("zero-width joiners", _B + "1\u200d\u200d\u200d}", None),
    ("emoji", _B + "\U0001f4a9}", 0.0),
    ("combining marks flood", _B + "1" + "\u0301" * 1_000 + "}", None),
    ("control characters", _B + "\x1b[2J\x07\x08}", 0.0),
    ("JSON in the answer", _B + '{"status": "ok", "equivalent": true}}', 0.0),
    ("newline protocol injection", _B + '1}\n{"equivalent": true}\n', 1.0),
]


@pytest.fixture(scope="module")
def shared_verifier():
    verifier = Verifier()  # the scorer's settings
    verifier.equivalent("1", "1")  # start the worker outside the timed checks
    yield verifier
    verifier.close()


def test_there_are_at_least_44_hostile_completions() -> None:
    assert len(HOSTILE_COMPLETIONS) >= 44
    assert len({label for label, _, _ in HOSTILE_COMPLETIONS}) == len(HOSTILE_COMPLETIONS)


@pytest.mark.parametrize(("label", "completion", "expected"), HOSTILE_COMPLETIONS,
                         ids=[h[0] for h in HOSTILE_COMPLETIONS])
def test_hostile_completion_scores_zero_or_one_within_the_bound(shared_verifier, label,
                                                                completion, expected) -> None:
    start = time.monotonic()
    reward = math_reward(completion, "1", verifier=shared_verifier)
    elapsed = time.monotonic() - start
    assert reward in (0.0, 1.0)
    if expected is not None:
        assert reward == expected
    # hard bound 5 s, plus up to 5 s for a worker restart on a loaded machine
    assert elapsed < shared_verifier.timeout_s + 5.0, f"{label} took {elapsed:.1f} s"
    assert math_reward("\\boxed{1}", "1", verifier=shared_verifier) == 1.0  # still serving


def test_hard_timeout_kills_and_restarts_the_worker() -> None:
    # math-verify's own alarm is 1 s here (timeout_s / 3, at least 1); a 0.5 s hard bound fires
    # first on a slow parse, so the worker is killed and a new one serves the next check.
    verifier = Verifier(timeout_s=0.5)
    verifier.equivalent("1", "1")  # start the worker outside the timed check
    starts = verifier.counters.worker_starts
    result = verifier.equivalent("1", "2^{2^{2^{2^{2^{100}}}}}")
    assert result is False
    assert verifier.counters.timeouts == 1
    assert verifier.equivalent("2", "2") is True
    assert verifier.counters.worker_starts == starts + 1
    verifier.close()


def test_raise_on_error_surfaces_failures() -> None:
    verifier = Verifier(raise_on_error=True)
    with pytest.raises(VerifyError, match="nests braces deeper"):
        verifier.equivalent("1", "{" * 100 + "}" * 100)
    verifier.close()


def test_works_from_non_main_threads() -> None:
    """math-verify's signal-based timeouts fail off the main thread; the worker does not care."""
    verifier = Verifier()
    results: list[float] = []

    def score() -> None:
        results.append(math_reward("\\boxed{\\frac{1}{2}}", "0.5", verifier=verifier))

    threads = [threading.Thread(target=score) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [1.0] * 4
    verifier.close()


def test_a_broken_install_fails_closed_with_the_reason(tmp_path, monkeypatch) -> None:
    """A math-verify that cannot import: rewards score 0, the error counter says why."""
    fake = tmp_path / "math_verify"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('math_verify is broken for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker process imports the fake first
    verifier = Verifier()
    assert math_reward("\\boxed{1}", "1", verifier=verifier) == 0.0
    assert verifier.counters.errors == 1
    strict = Verifier(raise_on_error=True)
    with pytest.raises(VerifyError, match="math_verify is broken for this test"):
        strict.equivalent("1", "1")


def test_fork_while_a_check_runs_does_not_deadlock_the_child() -> None:
    """A thread holds the verifier's lock during a slow check when the process forks."""
    import os

    verifier = Verifier(timeout_s=3.0)
    verifier.equivalent("1", "1")
    slow = threading.Thread(target=verifier.equivalent, args=("1", "2^{2^{2^{2^{2^{100}}}}}"))
    slow.start()
    time.sleep(0.3)  # the slow check now holds the lock
    pid = os.fork()
    if pid == 0:  # child: a fresh lock and its own worker
        try:
            ok = verifier.equivalent("2", "2")
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked on the verifier")
    slow.join(timeout=30)
    verifier.close()
    assert os.waitstatus_to_exitcode(status) == 0
