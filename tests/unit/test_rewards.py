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
