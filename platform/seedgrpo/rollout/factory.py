"""Which rollout engine, and building it: one rule for training trials and ``seedgrpo-eval``."""

from __future__ import annotations

import os
from pathlib import Path

from seedgrpo.rollout.vllm_engine import vllm_available

__all__ = ["EngineUnavailable", "choose_engine", "make_engine"]


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run here; the message says what to install or set."""


def choose_engine(requested: str, *, setting: str = "rollout.engine") -> str:
    """``auto`` -> vllm when it imports, else hf; an explicit vllm that cannot import fails.

    ``setting`` names where the choice came from, for the message.
    """
    if requested == "auto":
        return "vllm" if vllm_available() else "hf"
    if requested == "vllm" and not vllm_available():
        raise EngineUnavailable(f"{setting} 'vllm' but vLLM does not import here; install "
                                f"seedgrpo[vllm] (GPU) or seedgrpo[cpu], or use {setting} hf")
    return requested


def make_engine(kind: str, model_dir: str | Path, *, dtype: str, max_model_len: int, seed: int,
                gpu_memory_utilization: float = 0.3, threads: int | None = None,
                index: int = 0):
    """A ``VLLMEngine`` or an ``HFEngine`` (``kind`` as ``choose_engine`` returns it).

    ``threads``: CPU threads the engine may use (``config.resources.actor_threads``); unset =
    every core of this machine (``seedgrpo-eval``, where nothing else runs). ``index``: the
    engine's place among its trial's engines (vLLM on CPU pins each to its own cores).
    """
    threads = threads or max(1, os.cpu_count() or 1)
    if kind == "vllm":
        from seedgrpo.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model_dir, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                          max_model_len=max_model_len, seed=seed, cpu_threads=threads,
                          cpu_index=index)
    import torch

    from seedgrpo.rollout.hf_engine import HFEngine

    torch.set_num_threads(threads)
    return HFEngine(model_dir, dtype=dtype)
