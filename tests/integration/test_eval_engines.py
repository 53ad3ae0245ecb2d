"""Benchmark evaluation with real engines: the tiny and the bundled model, HF and vLLM, a few
problems of every benchmark, graded by real math-verify on the real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedgrpo.config.sections import EvalConfig, ModelConfig
from seedgrpo.evaluation import (
    BENCHMARK_SPECS,
    BenchmarkGrader,
    eval_sampling,
    load_benchmark,
    prepare_benchmark,
    run_evaluation,
)
from seedgrpo.models import load_tokenizer, resolve_model_dir
from seedgrpo.rollout.hf_engine import HFEngine

NAMES = list(BENCHMARK_SPECS)


def _evaluate(engine, model_dir: Path, data: Path, *, limit: int, max_new_tokens: int,
              samples: int = 1, tmp_path: Path) -> tuple[dict[str, float], list]:
    cfg = EvalConfig(benchmarks=NAMES, limit=limit, max_new_tokens=max_new_tokens,
                     samples=samples, temperature=1.0 if samples > 1 else 0.0)
    tokenizer = load_tokenizer(model_dir)
    prepared = [prepare_benchmark(load_benchmark(n, data_dir=str(data), limit=limit, seed=0),
                                  tokenizer, template="qwen_math", max_seq_len=4096,
                                  max_new_tokens=max_new_tokens) for n in NAMES]
    grade = BenchmarkGrader()
    metrics = run_evaluation(prepared, eval_sampling(cfg, 0), engine.generate, grade,
                             samples_path=tmp_path / "samples.jsonl")
    grade.close()
    return metrics, prepared


def _check(metrics: dict[str, float], samples: int) -> None:
    for name in NAMES:
        assert 0.0 <= metrics[f"eval/{name}/pass_at_1"] <= 1.0
        assert metrics[f"eval/{name}/response_len_mean"] > 0
        if samples > 1:
            assert metrics[f"eval/{name}/pass_at_{samples}"] >= metrics[f"eval/{name}/pass_at_1"]
    assert metrics["eval/avg/pass_at_1"] == pytest.approx(
        sum(metrics[f"eval/{n}/pass_at_1"] for n in NAMES) / len(NAMES))


def test_tiny_model_hf_every_benchmark(model_cache: Path, shared_data: Path,
                                       tmp_path: Path) -> None:
    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(model_cache)))
    metrics, _ = _evaluate(HFEngine(model_dir), model_dir, shared_data, limit=2,
                           max_new_tokens=8, samples=2, tmp_path=tmp_path)
    _check(metrics, 2)
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 5 * 2 * 2


@pytest.mark.slow
def test_bundled_model_hf_and_vllm_agree(model_cache: Path, shared_data: Path,
                                         tmp_path: Path) -> None:
    """Greedy decoding is deterministic, so the two engines must give the same completions on
    nearly every problem (their float32 kernels differ, so a near-tie may flip a token late)."""
    import json

    from seedgrpo.rollout.vllm_engine import VLLMEngine

    model_dir = resolve_model_dir(ModelConfig(source="bundled", name="smollm2-135m-instruct",
                                              cache_dir=str(model_cache)))
    completions = {}
    for kind, engine in (("vllm", lambda: VLLMEngine(model_dir, max_model_len=2048)),
                         ("hf", lambda: HFEngine(model_dir))):
        out = tmp_path / kind
        out.mkdir()
        instance = engine()
        try:
            metrics, _ = _evaluate(instance, model_dir, shared_data, limit=2,
                                   max_new_tokens=48, tmp_path=out)
        finally:
            instance.close()
        _check(metrics, 1)
        rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
        assert len(rows) == 10
        completions[kind] = [r["completion"] for r in rows]
    same_start = sum(a[:40] == b[:40] for a, b in zip(completions["vllm"], completions["hf"],
                                                       strict=True))
    assert same_start >= 8, completions
