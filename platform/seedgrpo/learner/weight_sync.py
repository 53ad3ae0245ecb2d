"""Weight sync: learner rank 0's full weights into every rollout engine.

Two transports, one interface for the trial loop (``seedgrpo.runtime.sync.WeightSyncer``):

``object_store`` (one node, or any cluster): rank 0 returns its state dict from a Ray call, so
it lands in Ray's object store; each rollout actor receives the reference, and loads it (HF:
``load_state_dict``; vLLM: a node-local safetensors file and ``reload_weights``).

``collective``: a stateless process group of learner rank 0 and one rank per engine worker::

    rank 0              learner rank 0 (sender; ZeRO-3 partitions gathered first)
    rank 1 .. W         rollout worker i's engine (vLLM: its worker process, via the
                        worker extension; HF: the rollout actor itself)

and each tensor goes by ``broadcast`` from rank 0, in the order of ``tensor_specs``. gloo on CPU,
nccl on GPU: the CPU run exercises exactly the code a GPU cluster runs. Receivers allocate each
tensor from its spec and stream them into the engine's weight loader.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from seedgrpo.learner.sync_group import SyncGroup

__all__ = ["TensorSpec", "tensor_specs", "send_tensors", "receive_tensors"]

TensorSpec = tuple[str, str, list[int]]  # name, dtype name (e.g. "float32"), shape


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
