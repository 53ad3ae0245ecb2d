"""A stateless process group for weight broadcast: learner rank 0 plus every engine worker.

Stateless (a ``TCPStore`` and a process group object, no ``init_process_group``) so it can live
beside the learners' own DeepSpeed group and inside vLLM workers, which have their own. Backend
``gloo`` on CPU, ``nccl`` on GPU: the same code, as OpenRLHF and TRL's vLLM sync do.
"""

from __future__ import annotations

from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["SyncGroup", "open_sync_group"]


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
