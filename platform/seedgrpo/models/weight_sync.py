"""Weight sync, all of it: learner rank 0's weights into every rollout engine.

Two transports behind one call, ``WeightSync.push(version)``:

``object_store`` (one node, or any cluster): rank 0 returns its full state dict from a Ray
call, so it lands in Ray's object store; every rollout actor receives the reference and loads
it (HF: in place; vLLM: a node-local safetensors file and ``reload_weights``).

``collective``: a stateless process group of learner rank 0 and one rank per engine::

    rank 0              learner rank 0 (sender; ZeRO-3 partitions gathered first)
    rank 1 .. W         rollout worker i's engine (vLLM: its worker process, through
                        ``VLLMWorkerExtension``; HF: the rollout actor itself)

and each tensor goes by ``broadcast`` from rank 0 in the order of ``tensor_specs``. gloo on
CPU, nccl on GPU: the CPU run exercises exactly the code a GPU cluster runs. The group is
stateless (a ``TCPStore`` and a process-group object, no ``init_process_group``) so it lives
beside the learners' own DeepSpeed group and inside vLLM's workers, which have their own.

Every engine implements the same loading methods (``seedgrpo.rollout.types.RolloutEngine``):
``load_weights(named tensors)``, ``load_weights_from_dir``, ``reset_weights`` (back to the base
model) and, for the collective transport, ``join_weight_group`` and ``receive_weights``. Each
push stamps the engines with the learner's version (optimizer steps taken), which every batch
they generate carries, so a trial can measure how stale its batches are.

Nothing here imports Ray: ``WeightSync`` drives the runtime's ``LearnerGroup`` and
``RolloutGroup``, which own the remote calls and their timeouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol

import torch
import torch.distributed as dist

__all__ = ["TensorSpec", "SyncGroup", "open_sync_group", "tensor_specs", "send_tensors",
           "receive_tensors", "WeightSync", "VLLMWorkerExtension"]

TensorSpec = tuple[str, str, list[int]]  # name, dtype name (e.g. "float32"), shape


# -- transport ------------------------------------------------------------------------------
class SyncGroup:
    """Rank 0 sends, everyone else receives, one tensor at a time."""

    def __init__(self, pg: dist.ProcessGroup, rank: int, world_size: int,
                 store: dist.TCPStore, device: str) -> None:
        self.pg, self.rank, self.world_size = pg, rank, world_size
        self.device = device  # where tensors must live for this backend (nccl: the GPU)
        self._store = store  # keep the store alive as long as the group

    def broadcast(self, tensor: torch.Tensor, root: int = 0) -> None:
        opts = dist.BroadcastOptions()
        opts.rootRank = root
        self.pg.broadcast([tensor], opts).wait()


def open_sync_group(host: str, port: int, rank: int, world_size: int, backend: str = "gloo",
                    timeout_s: float = 300.0) -> SyncGroup:
    """Join (rank 0: create) the group at ``host:port``; blocks until all ranks joined."""
    timeout = timedelta(seconds=timeout_s)
    store = dist.TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout)
    if backend == "gloo":
        pg = dist.ProcessGroupGloo(store, rank, world_size, timeout)
    elif backend == "nccl":
        pg = dist.ProcessGroupNCCL(store, rank, world_size)
    else:
        raise ValueError(f"unknown sync backend '{backend}'; known: gloo, nccl")
    return SyncGroup(pg, rank, world_size, store, "cpu" if backend == "gloo" else "cuda")


def tensor_specs(state: dict[str, torch.Tensor]) -> list[TensorSpec]:
    """What receivers must allocate, in sending order."""
    return [(name, str(t.dtype).removeprefix("torch."), list(t.shape)) for name, t in
            state.items()]


def send_tensors(group: SyncGroup, state: dict[str, torch.Tensor]) -> int:
    """Rank 0: broadcast every tensor in ``tensor_specs`` order; returns the count."""
    for tensor in state.values():
        group.broadcast(tensor.to(group.device).contiguous(), root=0)
    return len(state)


def receive_tensors(group: SyncGroup, specs: list[TensorSpec]
                    ) -> Iterator[tuple[str, torch.Tensor]]:
    """Ranks >= 1: receive each tensor by broadcast, yielding (name, tensor) as they arrive."""
    for name, dtype, shape in specs:
        tensor = torch.empty(shape, dtype=getattr(torch, dtype), device=group.device)
        group.broadcast(tensor, root=0)
        yield name, tensor


# -- orchestration ----------------------------------------------------------------------------
class LearnerSide(Protocol):
    """What ``WeightSync`` needs of the learner ranks (the runtime's ``LearnerGroup``)."""

    def export_state(self) -> Any: ...  # a reference to rank 0's full state dict
    def rendezvous(self) -> tuple[str, int]: ...
    def open_weight_group(self, host: str, port: int, world_size: int, backend: str) -> Any: ...
    def prepare_broadcast(self) -> list[TensorSpec]: ...
    def broadcast(self) -> Any: ...


class EngineSide(Protocol):
    """What ``WeightSync`` needs of the engines (the runtime's ``RolloutGroup``)."""

    def __len__(self) -> int: ...
    def load_state(self, state: Any, version: int) -> list[Any]: ...
    def join_weight_group(self, host: str, port: int, world_size: int, backend: str
                          ) -> list[Any]: ...
    def receive_weights(self, specs: list[TensorSpec], version: int) -> list[Any]: ...
    def wait(self, refs: list[Any], what: str) -> list[Any]: ...


class WeightSync:
    """Pushes the learners' current weights into the engines, by one of the two transports.

    ``push`` returns the engines' pending loads without waiting: Ray runs an actor's calls in
    order, so a generation submitted after the push sees the new weights, while the learners
    go on with the next step (the transfer overlaps learning). ``wait`` on the returned
    references to block, as a trial does before it checkpoints or evaluates.
    """

    def __init__(self, method: str, learners: LearnerSide, engines: EngineSide, *,
                 backend: str) -> None:
        if method not in ("object_store", "collective"):
            raise ValueError(f"unknown weight sync method '{method}'; known: object_store, "
                             "collective")
        self.method, self.learners, self.engines, self.backend = method, learners, engines, \
            backend
        self._group_open = False

    def _open_group(self) -> None:
        host, port = self.learners.rendezvous()  # rank 0's node and a port free there
        world = 1 + len(self.engines)
        joins = self.engines.join_weight_group(host, port, world, self.backend)
        self.engines.wait([*joins, self.learners.open_weight_group(host, port, world,
                                                                    self.backend)],
                          "joining the weight-sync group")
        self._group_open = True

    def push(self, version: int) -> list[Any]:
        """Start loading the learners' weights (``version`` = optimizer steps taken) into
        every engine; returns the references to wait on."""
        if self.method == "object_store":
            return self.engines.load_state(self.learners.export_state(), version)
        if not self._group_open:
            self._open_group()
        specs = self.learners.prepare_broadcast()
        # the receivers block in the broadcast until rank 0 sends: submit them first
        receive = self.engines.receive_weights(specs, version)
        return [*receive, self.learners.broadcast()]


# -- the vLLM side ------------------------------------------------------------------------------
class VLLMWorkerExtension:
    """Methods mixed into every vLLM worker (``worker_extension_cls``); called through
    ``LLM.collective_rpc``. Lives in an importable module, not ``__main__``: vLLM imports it by
    name in its worker processes."""

    def seedgrpo_join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                                   backend: str) -> None:
        """Join the learner's weight-sync group (a stateless group: no global init)."""
        self._seedgrpo_group = open_sync_group(host, port, rank, world_size, backend)

    def seedgrpo_receive_weights(self, specs: list[TensorSpec]) -> int:
        """Receive each tensor by broadcast from rank 0, streaming them into the model."""
        self.model_runner.reload_weights(
            weights_iterator=receive_tensors(self._seedgrpo_group, specs))
        self.seedgrpo_refresh_tied_head()
        return len(specs)

    def seedgrpo_refresh_tied_head(self) -> bool:
        """Re-derive the output head's kernel state after a reload.

        With tied embeddings, ``lm_head`` shares ``embed_tokens.weight``; on CPU its post-load
        step packs that weight into a separate GEMM handle, which an in-place reload of the
        embedding leaves stale (logits then come from the old embedding). Re-running the step
        rebuilds the handle from the new weight; on GPU the step does nothing.
        """
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        config = getattr(model, "config", None)
        if head is None or not getattr(config, "tie_word_embeddings", False):
            return False
        head.quant_method.process_weights_after_loading(head)
        return True
