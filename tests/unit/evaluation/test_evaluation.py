"""Grading rules, estimators, benchmark loading and metric assembly, against hand-computed cases."""

from __future__ import annotations

import json
from math import comb

import pytest

from seedgrpo.config.sections import BenchmarkSourceConfig, EvalConfig
from seedgrpo.data import GoldAnswer, Problem
from seedgrpo.evaluation import (
    BENCHMARK_SPECS,
    GRADING_RULES,
    PAPER_RESULTS,
    BenchmarkNotFound,
    Grader,
    avg_at_k,
    load_benchmark,
    maj_at_k,
    pass_at_k,
)
from seedgrpo.evaluation.summary import average_metrics, benchmark_metrics, grade_groups
from seedgrpo.rollout.types import Completion


@pytest.fixture(scope="module")
def graders(strict_verifier):
    return {r: Grader(r, verifier=strict_verifier) for r in GRADING_RULES}


def test_the_config_accepts_exactly_the_catalogue_of_rules_and_benchmarks():
    """The names live once, in config/catalogue.py; the config and evaluation both read it."""
    assert {s.grading for s in BENCHMARK_SPECS.values()} <= set(GRADING_RULES)
    for rule in GRADING_RULES:
        assert BenchmarkSourceConfig(path="x.jsonl", grading=rule).grading == rule
    with pytest.raises(ValueError, match=r"'mth' is not one of .*did you mean 'math'"):
        BenchmarkSourceConfig(path="x.jsonl", grading="mth")
    assert EvalConfig(benchmarks=[*BENCHMARK_SPECS, "heldout"]).benchmarks[-1] == "heldout"
    with pytest.raises(ValueError, match="unknown benchmark"):
        EvalConfig(benchmarks=["aime25"])


@pytest.mark.parametrize("rule, gold, pred, correct", [
    ("integer", "025", "25", True),          # AIME leading zeros
    ("integer", "25", "025", True),
    ("integer", "27", "27.0", True),         # AMC answers stored as floats upstream
    ("integer", "25", "25.5", False),
    ("integer", "204", "204.01", False),     # no tolerance for whole-number answers
    ("math", "\\frac{1}{2}", "0.5", True),
    ("math", "\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", True),
    ("math", "\\text{(C)}", "C", True),
    ("math", "5", "6", False),
    ("physical", "4.4e7", "4.4 \\times 10^{7}", True),  # Minerva E-notation
    ("physical", "4.4e7", "44000000", True),
    ("physical", "4.4e7", "4.4 \\times 10^{6}", False),
    ("physical", "5.3e-9", "5.2e-9", False),           # math-verify's rounding would say equal
    ("physical", "27.39", "27.39001", True),            # within 1e-4 relative
    ("physical", "27.39", "27.4", False),
    ("physical", "1.6", "1.6 \\mathrm{~cm}", True),    # units dropped
    ("physical", "62.5%", "62.5", True),
    ("physical", "np.arcsin(10/13)", "\\arcsin\\left(\\frac{10}{13}\\right)", True),
    ("physical", "69,84", "84, 69", True),              # multi-answer in any order
    ("physical", "69,84", "69", False),                 # a missing part is wrong
    ("physical", "E_{1},E_{2}", "E_{2}, E_{1}", True),
    ("physical", "(1,1), (3,2)", "(3,2),(1,1)", True),
    ("physical", "(2,4)", "(4,2)", False),              # a tuple's order matters
    ("physical", "\\text{Yes}", "\\text{Yes}", True),     # a text answer is not a unit
    ("physical", "\\text{Yes}", "\\text{No}", False),
])
def test_grading_rules(graders, rule, gold, pred, correct):
    assert graders[rule].grade(f"so \\boxed{{{pred}}}", GoldAnswer(gold)).correct is correct


def test_row_unit_and_tolerance(graders):
    physical = graders["physical"]
    assert physical.grade("\\boxed{\\frac{600}{7} km/h}", GoldAnswer("\\frac{600}{7}",
                                                                      unit="km/h")).correct
    tol = GoldAnswer("4.2", unit="%", abs_tol=0.1)  # olympiadbench-2592
    assert physical.grade("\\boxed{4.25\\%}", tol).correct
    assert not physical.grade("\\boxed{4.4}", tol).correct


def test_alternatives_and_missing_box(graders):
    gold = GoldAnswer("3", alternatives=("4",))
    assert graders["math"].grade("\\boxed{4}", gold).correct
    verdict = graders["math"].grade("the answer is 3", gold)
    assert (verdict.correct, verdict.answer, verdict.reason) == (False, None, "no boxed answer")


def test_unknown_rule_names_the_choices():
    with pytest.raises(ValueError, match="known: integer, math, physical"):
        Grader("fuzzy")


# -- estimators ---------------------------------------------------------------------------------
def test_pass_at_k_matches_the_closed_form():
    verdicts = [[True, False, False, False, True], [False] * 5, [True] * 5]
    for k in range(1, 6):
        expected = ((1 - comb(3, k) / comb(5, k)) + 0 + 1) / 3
        assert pass_at_k(verdicts, k) == pytest.approx(expected)
    assert pass_at_k(verdicts, 1) == pytest.approx(avg_at_k(verdicts))


def test_estimator_errors():
    with pytest.raises(ValueError, match="at least 4 samples"):
        pass_at_k([[True, False]], 4)
    with pytest.raises(ValueError, match="no problems"):
        avg_at_k([])


def test_maj_at_k_ties_and_no_answers():
    # problem 1: answers A B B -> B (correct); 2: A B tie -> A (wrong); 3: nothing answered
    assert maj_at_k([[False, True, True], [False, True, False], [False, False, False]],
                    [[0, 1, 1], [0, 1, None], [None, None, None]]) == pytest.approx(1 / 3)


def test_metrics_of_a_benchmark_and_the_average(graders):
    def c(text, n=5, truncated=False):
        return Completion(list(range(n)), text, [0.0] * n, truncated)

    problems = [Problem("a", "1+1", GoldAnswer("2")), Problem("b", "2+2", GoldAnswer("4"))]
    groups = [[c("\\boxed{2}"), c("\\boxed{3}", 7, True)], [c("\\boxed{5}"), c("\\boxed{5}")]]
    graded = grade_groups(graders["math"], problems, [[x.text for x in g] for g in groups])
    m = benchmark_metrics("toy", groups, graded)
    assert m == {"eval/toy/pass_at_1": 0.25, "eval/toy/avg_at_2": 0.25,
                 "eval/toy/pass_at_2": 0.5, "eval/toy/maj_at_2": 0.5,  # a: tie -> first (2)
                 "eval/toy/response_len_mean": 5.5, "eval/toy/truncated_frac": 0.25}
    avg = average_metrics({"toy": m, "other": {"eval/other/pass_at_1": 0.75,
                                               "eval/other/avg_at_2": 0.75,
                                               "eval/other/pass_at_2": 1.0,
                                               "eval/other/maj_at_2": 1.0},
                           "heldout": {"eval/heldout/pass_at_1": 0.0}})
    assert avg == {"eval/avg/pass_at_1": 0.5, "eval/avg/avg_at_2": 0.5,
                   "eval/avg/pass_at_2": 0.75, "eval/avg/maj_at_2": 0.75}


def test_paper_rows_read_as_fractions_under_our_metric_names():
    row = next(r for r in PAPER_RESULTS if r.run == "Dr. GRPO 7B")
    assert row.as_metrics()["eval/math500/pass_at_1"] == pytest.approx(0.80)
    assert row.as_metrics()["eval/avg/pass_at_1"] == pytest.approx(0.514)


# -- loading ------------------------------------------------------------------------------------
def test_missing_data_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("SEEDGRPO_DATA_DIR", raising=False)
    with pytest.raises(BenchmarkNotFound, match="aime24.*neither eval.data_dir nor "
                                                 "\\$SEEDGRPO_DATA_DIR.*aime24.jsonl"):
        load_benchmark("aime24")
    monkeypatch.setenv("SEEDGRPO_DATA_DIR", str(tmp_path))
    with pytest.raises(BenchmarkNotFound, match=f"{tmp_path}/aime24.jsonl does not exist "
                                                 "\\(data directory from \\$SEEDGRPO_DATA_DIR"):
        load_benchmark("aime24")


def test_subset_is_fixed_by_seed(shared_data):
    a = load_benchmark("math500", data_dir=str(shared_data), limit=7, seed=3)
    b = load_benchmark("math500", data_dir=str(shared_data), limit=7, seed=3)
    c = load_benchmark("math500", data_dir=str(shared_data), limit=7, seed=4)
    assert [p.id for p in a.problems] == [p.id for p in b.problems] != [p.id for p in
                                                                        c.problems]
    assert len(a.problems) == 7


def test_olympiadbench_row_fields(shared_data):
    rows = {p.id: p for p in load_benchmark("olympiadbench",
                                            data_dir=str(shared_data)).problems}
    assert rows["olympiadbench-2592"].gold == GoldAnswer("4.2", (), "%", 0.1)
    assert rows["olympiadbench-2334"].gold.unit == "km"


def test_custom_jsonl_benchmark(tmp_path, graders):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"q": "1+1?", "a": 2, "answers": ["2", "two"]}) + "\n"
                    + json.dumps({"q": "bad", "a": ""}) + "\n")
    src = BenchmarkSourceConfig(path=str(path), problem_field="q", answer_field="a")
    with pytest.raises(ValueError, match=f"{path}:2: field 'a' is empty"):
        load_benchmark("mine", custom={"mine": src})
    path.write_text(json.dumps({"q": "1+1?", "a": 2, "answers": ["2", "two"]}) + "\n")
    bench = load_benchmark("mine", custom={"mine": src})
    assert bench.problems[0].gold == GoldAnswer("2", ("two",))
    assert bench.problems[0].id == "mine-1"  # no id field: <benchmark>-<line>


def test_hf_dataset_benchmark_from_a_local_dataset_dir(tmp_path):
    """The hub path through the real `datasets` library, offline: a local dataset directory
    loads exactly as a hub id would (the machine cannot reach the hub)."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "test.jsonl").write_text(
        "".join(json.dumps({"question": f"{i}+1", "final": str(i + 1)}) + "\n"
                for i in range(3)))
    src = BenchmarkSourceConfig(hub_id=str(tmp_path / "ds"), split="test",
                                problem_field="question", answer_field="final")
    bench = load_benchmark("local_hub", custom={"local_hub": src})
    assert [p.gold.answer for p in bench.problems] == ["1", "2", "3"]
    bad = BenchmarkSourceConfig(hub_id=str(tmp_path / "ds"), split="test")
    with pytest.raises(ValueError, match="no column 'problem', 'answer'; it has question, "
                                         "final"):
        load_benchmark("local_hub", custom={"local_hub": bad})


def test_eval_config_validation():
    with pytest.raises(ValueError, match="unknown benchmark.*gsm8k.*custom_benchmarks"):
        EvalConfig(benchmarks=["gsm8k"])
    with pytest.raises(ValueError, match="exactly one of path"):
        BenchmarkSourceConfig()
    with pytest.raises(ValueError, match="twice"):
        EvalConfig(benchmarks=["aime24", "aime24"])
    cfg = EvalConfig(benchmarks=["gsm8k"],
                     custom_benchmarks={"gsm8k": BenchmarkSourceConfig(path="x.jsonl")})
    assert cfg.benchmarks == ["gsm8k"]
