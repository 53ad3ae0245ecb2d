"""From graded samples to the metrics and sample rows of one evaluation.

Metric names (docs/ARCHITECTURE.md, "Metric names"; the sweep report and Tune's schedulers
read them):
``eval/<benchmark>/pass_at_1`` (greedy, or estimated from k samples), ``eval/<benchmark>/
avg_at_<k>``, ``pass_at_<k>``, ``maj_at_<k>`` (k > 1 only), ``eval/<benchmark>/response_len_mean``,
``eval/<benchmark>/truncated_frac``, and ``eval/avg/<metric>``: the unweighted mean over the
benchmarks run (the paper's "Avg" column), where the held-out training split counts only when it
is the sole benchmark.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedgrpo.algorithms.clustering import cluster_by_equivalence
from seedgrpo.data.problems import Problem
from seedgrpo.evaluation.estimators import avg_at_k, maj_at_k, pass_at_k
from seedgrpo.evaluation.grading import Grader, Verdict, grading_verifier
from seedgrpo.rewards.verifier import Verifier
from seedgrpo.rollout.types import Completion

__all__ = ["GradedBenchmark", "BenchmarkGrader", "grade_groups", "answer_clusters",
           "benchmark_metrics", "average_metrics", "write_samples"]


@dataclass(frozen=True)
class GradedBenchmark:
    """Verdicts (and answer clusters, for maj@k) of one benchmark's groups of samples."""

    verdicts: list[list[Verdict]]
    clusters: list[list[int | None]]


def answer_clusters(grader: Grader, answers: Sequence[str | None]) -> list[int | None]:
    """Cluster id per answer under the benchmark's own equality (``None``: no answer).

    The training clustering (``algorithms.clustering.cluster_by_equivalence``: greedy against
    each cluster's first answer, numbered by first appearance) with the grader's rule as its
    equivalence test, the rule it applies to gold answers, so "4.4e7" and "4.4\\times10^{7}"
    vote together. No time budget: each check is already bounded by the grader's verifier.
    Answers equal once whitespace is removed join without a check (as in training), which the
    grading rules also treat as equal.

    >>> answer_clusters(Grader("integer"), ["025", None, "7", "25.0"])
    [0, None, 1, 0]
    """
    answered = [a for a in answers if a is not None]
    if not answered:
        return [None] * len(answers)
    clustering = cluster_by_equivalence(
        answered, parse=lambda text, _seconds_left: text,
        equivalent=lambda rep, new, _seconds_left: grader.equal(rep, new), budget_s=math.inf)
    ids = iter(clustering.ids)
    return [None if answer is None else next(ids) for answer in answers]


def grade_groups(grader: Grader, problems: Sequence[Problem],
                 texts: Sequence[Sequence[str]]) -> GradedBenchmark:
    """Grade every sample; cluster answers when there is more than one sample per problem."""
    verdicts = [[grader.grade(t, p.gold) for t in group]
                for p, group in zip(problems, texts, strict=True)]
    clusters = [answer_clusters(grader, [v.answer for v in vs]) if len(vs) > 1
                else [0 if vs[0].answer is not None else None] for vs in verdicts]
    return GradedBenchmark(verdicts, clusters)


class BenchmarkGrader:
    """The ``grade`` function of an evaluation: one ``Grader`` per rule, one verifier for all.

    Training (the scorer actor), ``seedgrpo-eval`` and the tests all grade through this, so a
    rule's grader is built once and every worker process is closed in one place.
    """

    def __init__(self, verifier: Verifier | None = None) -> None:
        self.verifier = verifier if verifier is not None else grading_verifier()
        self._graders: dict[str, Grader] = {}

    def __call__(self, rule: str, problems: Sequence[Problem],
                 texts: Sequence[Sequence[str]]) -> GradedBenchmark:
        if rule not in self._graders:
            self._graders[rule] = Grader(rule, verifier=self.verifier)
        return grade_groups(self._graders[rule], problems, texts)

    def close(self) -> None:
        self.verifier.close()


def benchmark_metrics(name: str, groups: Sequence[Sequence[Completion]],
                      graded: GradedBenchmark) -> dict[str, float]:
    """The metrics of one benchmark; k is the number of samples per problem."""
    correct = [[v.correct for v in vs] for vs in graded.verdicts]
    k = len(correct[0])
    mean = avg_at_k(correct)  # greedy pass@1, or pass@1 estimated from k samples (= avg@k)
    samples = [c for g in groups for c in g]
    metrics = {
        f"eval/{name}/pass_at_1": mean,
        f"eval/{name}/response_len_mean": sum(len(c.token_ids) for c in samples) / len(samples),
        f"eval/{name}/truncated_frac": sum(c.truncated for c in samples) / len(samples),
    }
    if k > 1:
        metrics[f"eval/{name}/avg_at_{k}"] = mean
        metrics[f"eval/{name}/pass_at_{k}"] = pass_at_k(correct, k)
        metrics[f"eval/{name}/maj_at_{k}"] = maj_at_k(correct, graded.clusters)
    return metrics


def average_metrics(per_benchmark: dict[str, dict[str, float]]) -> dict[str, float]:
    """``eval/avg/<metric>``: the unweighted mean over benchmarks of every accuracy metric that
    all of them have.

    ``heldout`` (training data) is left out of the average when real benchmarks ran. With k
    per benchmark (``eval.samples_per_benchmark``), ``pass_at_1`` averages each benchmark's own
    estimate (greedy, or avg@k), and an ``avg_at_16`` of AIME24 alone gets no average.
    """
    names = [n for n in per_benchmark if n != "heldout"] or list(per_benchmark)
    out: dict[str, float] = {}
    suffixes = set.intersection(*({key.split("/", 2)[2] for key in per_benchmark[n]}
                                  for n in names)) if names else set()
    for suffix in sorted(suffixes):
        if suffix.startswith(("response_len", "truncated")):
            continue
        values = [per_benchmark[n][f"eval/{n}/{suffix}"] for n in names]
        out[f"eval/avg/{suffix}"] = sum(values) / len(values)
    return out


def write_samples(path: Path, benchmark: str, problems: Sequence[Problem],
                  groups: Sequence[Sequence[Completion]], graded: GradedBenchmark,
                  extra: dict[str, Any] | None = None) -> None:
    """One JSON line per sample: problem, completion, extracted answer, gold, verdict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for problem, group, verdicts in zip(problems, groups, graded.verdicts, strict=True):
            for i, (completion, verdict) in enumerate(zip(group, verdicts, strict=True)):
                fh.write(json.dumps({
                    "benchmark": benchmark, "id": problem.id, "sample": i,
                    "problem": problem.problem, "gold": problem.gold.answer,
                    "completion": completion.text, "answer": verdict.answer,
                    "correct": verdict.correct, "reason": verdict.reason,
                    "response_len": len(completion.token_ids),
                    "truncated": completion.truncated, **(extra or {}),
                }, ensure_ascii=False) + "\n")
