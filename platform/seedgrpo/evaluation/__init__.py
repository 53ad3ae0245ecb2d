"""Benchmark evaluation: the registry and loaders, grading rules, estimators, the runner."""

from seedgrpo.evaluation.benchmarks import (
    BENCHMARK_SPECS,
    DATA_DIR_ENV,
    Benchmark,
    BenchmarkNotFound,
    BenchmarkSpec,
    load_benchmark,
    select_subset,
)
from seedgrpo.evaluation.estimators import avg_at_k, maj_at_k, majority_correct, pass_at_k
from seedgrpo.evaluation.grading import GRADING_RULES, Grader, Verdict
from seedgrpo.evaluation.paper import PAPER_RESULTS
from seedgrpo.evaluation.runner import (
    PreparedBenchmark,
    eval_sampling,
    prepare_benchmark,
    run_evaluation,
)
from seedgrpo.evaluation.summary import (
    BenchmarkGrader,
    GradedBenchmark,
    benchmark_metrics,
    grade_groups,
)

__all__ = [
    "BENCHMARK_SPECS", "DATA_DIR_ENV", "GRADING_RULES", "PAPER_RESULTS", "Benchmark",
    "BenchmarkGrader", "BenchmarkNotFound", "BenchmarkSpec", "GradedBenchmark",
    "Grader", "PreparedBenchmark", "Verdict", "avg_at_k", "benchmark_metrics", "eval_sampling",
    "grade_groups", "load_benchmark", "maj_at_k", "majority_correct",
    "pass_at_k", "prepare_benchmark", "run_evaluation", "select_subset",
]
