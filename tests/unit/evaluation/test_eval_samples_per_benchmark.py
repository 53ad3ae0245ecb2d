"""``eval.samples_per_benchmark``: avg@k on a small benchmark beside greedy pass@1 on the rest,
in one evaluation, through the runner every evaluation goes through.

``generate`` is the runner's own seam (training passes the rollout actors', ``seedgrpo-eval`` an
engine's): here a function answering from a fixed script, so the expected metrics are exact.
Grading is the real grader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedgrpo.config.sections import EvalConfig
from seedgrpo.data import GoldAnswer, Problem
from seedgrpo.evaluation import Benchmark, Grader
from seedgrpo.evaluation.runner import PreparedBenchmark, eval_sampling, run_evaluation
from seedgrpo.evaluation.summary import grade_groups
from seedgrpo.rollout.types import Completion, SamplingSettings


def _benchmark(name: str, n: int) -> PreparedBenchmark:
    problems = [Problem(f"{name}-{i}", f"{i}+0", GoldAnswer(str(i))) for i in range(n)]
    return PreparedBenchmark(Benchmark(name, "integer", problems, "test"),
                             [[i] for i in range(n)])


def test_a_benchmark_gets_its_own_k_and_the_average_stays_per_benchmark(
        strict_verifier, tmp_path: Path) -> None:
    cfg = EvalConfig(benchmarks=["amc23", "aime24"], temperature=0.6,
                     samples_per_benchmark={"aime24": 4})
    asked: list[SamplingSettings] = []

    def generate(prompts: list[list[int]], s: SamplingSettings) -> list[list[Completion]]:
        asked.append(s)
        # problem i: sample j right when j <= i (aime24: 1/4, 2/4 right; amc23: greedy)
        return [[Completion([1], f"\\boxed{{{p[0] if j <= p[0] else 99}}}", [0.0], False)
                 for j in range(s.n)] for p in prompts]

    graders: dict[str, Grader] = {}

    def grade(rule: str, problems: list[Problem], texts: list[list[str]]):  # noqa: ANN202
        graders.setdefault(rule, Grader(rule, verifier=strict_verifier))
        return grade_groups(graders[rule], problems, texts)

    samples = tmp_path / "samples.jsonl"
    metrics = run_evaluation([_benchmark("amc23", 2), _benchmark("aime24", 2)],
                             eval_sampling(cfg, seed=3), generate, grade,
                             samples_path=samples)
    assert [(s.n, s.temperature) for s in asked] == [(1, 0.0), (4, 0.6)]
    assert metrics["eval/amc23/pass_at_1"] == 1.0  # greedy: j = 0 <= i always
    # aime24: problem 0 right in 1 of 4 samples, problem 1 in 2 of 4: avg@4 = 3/8
    assert metrics["eval/aime24/avg_at_4"] == pytest.approx(3 / 8)
    assert metrics["eval/aime24/pass_at_1"] == pytest.approx(3 / 8)
    # the paper's Avg: each benchmark's own pass@1 (greedy, or estimated from k); avg@4
    # exists for aime24 alone, so it gets no average (it used to raise a KeyError)
    assert metrics["eval/avg/pass_at_1"] == pytest.approx((1.0 + 3 / 8) / 2)
    assert "eval/avg/avg_at_4" not in metrics
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert sum(r["benchmark"] == "aime24" for r in rows) == 2 * 4
    assert sum(r["benchmark"] == "amc23" for r in rows) == 2


def test_the_average_covers_only_metrics_every_benchmark_has() -> None:
    from seedgrpo.evaluation.summary import average_metrics

    avg = average_metrics({"aime24": {"eval/aime24/pass_at_1": 0.25,
                                      "eval/aime24/avg_at_16": 0.25},
                           "math500": {"eval/math500/pass_at_1": 0.75}})
    assert avg == {"eval/avg/pass_at_1": 0.5}
