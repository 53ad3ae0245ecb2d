"""One evaluation: prompts for each benchmark, generation, grading, metrics, samples file.

The same code runs inside a training trial (generation on the rollout actors, grading on the
scorer actor) and in ``seedgrpo-eval`` (an engine and a grader in this process): both hand in
a ``generate`` and a ``grade`` function, so the two can never compute a metric differently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo.config.sections import EvalConfig
from seedgrpo.data.problems import Problem
from seedgrpo.data.templates import render_prompt
from seedgrpo.evaluation.benchmarks import Benchmark
from seedgrpo.evaluation.summary import (
    GradedBenchmark,
    average_metrics,
    benchmark_metrics,
    write_samples,
)
from seedgrpo.rollout.types import Completion, SamplingSettings

__all__ = ["PreparedBenchmark", "prepare_benchmark", "EvalSampling", "eval_sampling",
           "run_evaluation", "GenerateFn", "GradeFn"]

logger = logging.getLogger(__name__)

GenerateFn = Callable[[list[list[int]], SamplingSettings], list[list[Completion]]]
GradeFn = Callable[[str, list[Problem], list[list[str]]], GradedBenchmark]

_TOO_LONG = Completion(token_ids=[], text="", logprobs=[], truncated=True)


@dataclass(frozen=True)
class PreparedBenchmark:
    """A benchmark with its tokenized prompts; ``None`` marks a prompt too long for the model,
    which is graded wrong (never dropped: every trial is scored on the same problems)."""

    benchmark: Benchmark
    prompt_ids: list[list[int] | None]

    @property
    def too_long(self) -> int:
        return sum(ids is None for ids in self.prompt_ids)


def prepare_benchmark(benchmark: Benchmark, tokenizer: Any, *, template: str,
                      max_seq_len: int, max_new_tokens: int,
                      shots: Sequence[Problem] = ()) -> PreparedBenchmark:
    """Render and tokenize every problem's prompt (zero-shot unless ``shots`` are given)."""
    budget = max_seq_len - max_new_tokens
    ids: list[list[int] | None] = []
    for problem in benchmark.problems:
        text = render_prompt(problem, template, tokenizer, shots)
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.append(tokens if len(tokens) <= budget else None)
    prepared = PreparedBenchmark(benchmark, ids)
    if prepared.too_long:
        logger.warning("%s: %d of %d prompts are longer than %d tokens (max_seq_len %d - "
                       "max_new_tokens %d) and count as wrong", benchmark.name,
                       prepared.too_long, len(ids), budget, max_seq_len, max_new_tokens)
    return prepared


@dataclass(frozen=True)
class EvalSampling:
    """How each benchmark of an evaluation is sampled: ``default``, unless ``per_benchmark``
    names it (``eval.samples_per_benchmark``: avg@k on AIME24 and AMC23, whose 30 and 40
    problems make one greedy pass too coarse, beside greedy pass@1 on the large ones)."""

    default: SamplingSettings
    per_benchmark: Mapping[str, SamplingSettings] = field(default_factory=dict)

    def for_benchmark(self, name: str) -> SamplingSettings:
        return self.per_benchmark.get(name, self.default)


def _sampling(cfg: EvalConfig, k: int, seed: int) -> SamplingSettings:
    """Greedy (the paper's protocol) for one sample, else k samples at ``eval.temperature``."""
    if k == 1:
        return SamplingSettings(n=1, max_new_tokens=cfg.max_new_tokens, temperature=0.0,
                                seed=seed)
    return SamplingSettings(n=k, max_new_tokens=cfg.max_new_tokens,
                            temperature=cfg.temperature, top_p=cfg.top_p, seed=seed)


def eval_sampling(cfg: EvalConfig, seed: int) -> EvalSampling:
    """``eval.samples`` for every benchmark, ``eval.samples_per_benchmark`` where it names one.

    >>> s = eval_sampling(EvalConfig(benchmarks=["heldout", "aime24"], temperature=0.6,
    ...                              samples_per_benchmark={"aime24": 16}), seed=0)
    >>> (s.for_benchmark("heldout").n, s.for_benchmark("heldout").temperature)
    (1, 0.0)
    >>> (s.for_benchmark("aime24").n, s.for_benchmark("aime24").temperature)
    (16, 0.6)
    """
    return EvalSampling(_sampling(cfg, cfg.samples, seed),
                        {name: _sampling(cfg, k, seed)
                         for name, k in cfg.samples_per_benchmark.items()})


def run_evaluation(prepared: Sequence[PreparedBenchmark],
                   settings: SamplingSettings | EvalSampling,
                   generate: GenerateFn, grade: GradeFn, *, samples_path: Path | None = None,
                   extra: dict[str, Any] | None = None,
                   on_benchmark: Callable[[str, dict[str, float], float], None] | None = None
                   ) -> dict[str, float]:
    """Every benchmark's metrics plus ``eval/avg/*``; samples appended to ``samples_path``.

    ``settings`` is one sampling for all benchmarks, or an :class:`EvalSampling` (k per
    benchmark)."""
    per_benchmark: dict[str, dict[str, float]] = {}
    for pb in prepared:
        t0 = time.monotonic()
        bench = pb.benchmark
        sampling = settings.for_benchmark(bench.name) if isinstance(settings, EvalSampling) \
            else settings
        runnable = [ids for ids in pb.prompt_ids if ids is not None]
        generated = iter(generate(runnable, sampling) if runnable else [])
        groups = [next(generated) if ids is not None else [_TOO_LONG] * sampling.n
                  for ids in pb.prompt_ids]
        texts = [[c.text for c in g] for g in groups]
        graded = grade(bench.grading, bench.problems, texts)
        metrics = benchmark_metrics(bench.name, groups, graded)
        per_benchmark[bench.name] = metrics
        if samples_path is not None:
            write_samples(samples_path, bench.name, bench.problems, groups, graded, extra)
        seconds = time.monotonic() - t0
        logger.info("eval %s: %d problems x %d, pass@1 %.3f, %.0f s", bench.name,
                    len(bench.problems), sampling.n, metrics[f"eval/{bench.name}/pass_at_1"],
                    seconds)
        if on_benchmark is not None:  # progress for a command line
            on_benchmark(bench.name, metrics, seconds)
    out = {k: v for m in per_benchmark.values() for k, v in m.items()}
    out.update(average_metrics(per_benchmark))
    return out
