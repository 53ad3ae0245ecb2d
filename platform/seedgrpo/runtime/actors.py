"""The Ray actors of one trial: thin shells, each owning one resource (STYLE.md rule 9).

- ``RolloutActor``: one engine (vLLM or HF), generation and weight loading.
- ``ScorerActor``: rewards and advantages; a plain sync actor, so math-verify's worker and its
  counters live in one process.
- ``LearnerActor``: one DeepSpeed rank (``seedgrpo.learner.rank.LearnerRank``).

Configs cross the actor boundary as plain dicts (validated again inside), so actors never depend
on pickling pydantic models across Ray versions.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from typing import Any

import ray

from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.rollout.types import Completion, SamplingSettings

__all__ = ["RolloutActor", "ScorerActor", "LearnerActor", "free_port"]

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A free TCP port on this node (for a rendezvous that this process will host)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


@ray.remote
class RolloutActor:
    """One rollout engine. ``engine`` is ``hf`` or ``vllm`` (``auto`` is resolved by the caller)."""

    def __init__(self, config: dict[str, Any], model_dir: str, engine: str) -> None:
        from seedgrpo.rollout.factory import make_engine

        cfg = ExperimentConfig.model_validate(config)
        self.kind = engine
        self._sync_group = None
        self.engine = make_engine(engine, model_dir, dtype=cfg.model.dtype,
                                  max_model_len=cfg.model.max_seq_len, seed=cfg.train.seed,
                                  gpu_memory_utilization=cfg.rollout.gpu_memory_utilization)
        self._weights_dir = tempfile.mkdtemp(prefix="seedgrpo-weights-")

    def ready(self) -> str:
        return self.kind

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        return self.engine.generate(prompt_ids, settings)

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self.engine.sequence_logprobs(prompt_ids, completion_ids)

    # -- weight sync, object-store method ---------------------------------------------------
    def load_state(self, state: dict[str, Any]) -> int:
        """Weights that came through Ray's object store (rank 0's ``full_state_dict``)."""
        if self.kind == "hf":
            self.engine.load_state_dict(state.items())
        else:  # vLLM reloads from files: write them node-locally
            from safetensors.torch import save_file

            save_file(state, os.path.join(self._weights_dir, "model.safetensors"))
            self.engine.load_weights_from_dir(self._weights_dir)
        return len(state)

    # -- weight sync, collective method -----------------------------------------------------
    def join_sync_group(self, host: str, port: int, rank: int, world_size: int,
                        backend: str) -> None:
        if self.kind == "vllm":
            self.engine.collective_rpc("seedgrpo_join_sync_group", {
                "host": host, "port": port, "rank": rank, "world_size": world_size,
                "backend": backend})
        else:
            from seedgrpo.learner.sync_group import open_sync_group

            self._sync_group = open_sync_group(host, port, rank, world_size, backend)

    def receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        if self.kind == "vllm":
            return self.engine.collective_rpc("seedgrpo_receive_weights", {"specs": specs})[0]
        from seedgrpo.learner.weight_sync import receive_tensors

        self.engine.load_state_dict(receive_tensors(self._sync_group, specs))
        return len(specs)


@ray.remote
class ScorerActor:
    """Rewards, clusters, semantic entropy and advantages for groups of completions."""

    def __init__(self, config: dict[str, Any]) -> None:
        from seedgrpo.rewards import Verifier

        self.algo = ExperimentConfig.model_validate(config).algorithm
        self.verifier = Verifier()
        from seedgrpo.evaluation import BenchmarkGrader

        self.benchmark_grader = BenchmarkGrader()  # its own verifier, with a longer bound

    def score(self, groups: list[list[Completion]], golds: list[str],
              embeddings: list[list[list[float]]] | None = None) -> list[Any]:
        from seedgrpo.runtime.scoring import score_group

        per_group = embeddings if embeddings is not None else [None] * len(groups)
        return [score_group(g, gold, self.algo, verifier=self.verifier, embeddings=e)
                for g, gold, e in zip(groups, golds, per_group, strict=True)]

    def grade(self, rule: str, problems: list[Any], texts: list[list[str]]) -> Any:
        """Benchmark grading (evaluation): verdicts and answer clusters, no advantages."""
        return self.benchmark_grader(rule, problems, texts)

    def verifier_counters(self) -> dict[str, int]:
        return self.verifier.counter_values()


@ray.remote
class LearnerActor:
    """One DeepSpeed rank. ``setup`` joins the process group (rank 0 hosts the rendezvous)."""

    def __init__(self, config: dict[str, Any], model_dir: str, rank: int,
                 world_size: int) -> None:
        self.config, self.model_dir = config, model_dir
        self.rank, self.world_size = rank, world_size
        self.learner = None
        self._prepared: dict[str, Any] | None = None
        self._sync_group = None

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0's node address and a free port on it, for every rank's MASTER_ADDR/PORT."""
        return ray.util.get_node_ip_address(), free_port()

    def setup(self, master_addr: str, master_port: int) -> int:
        from seedgrpo.learner.rank import LearnerRank

        cfg = ExperimentConfig.model_validate(self.config)
        self.learner = LearnerRank(cfg, model_dir=self.model_dir, rank=self.rank,
                                   world_size=self.world_size, master_addr=master_addr,
                                   master_port=master_port)
        return self.rank

    def train_step(self, samples: list[Any], num_tokens: int, num_responses: int
                   ) -> dict[str, float]:
        return self.learner.train_step(samples, num_tokens=num_tokens,
                                       num_responses=num_responses)

    def full_state_dict(self) -> dict[str, Any] | None:
        return self.learner.full_state_dict()

    def embed(self, samples: list[Any]) -> list[list[float]]:
        return self.learner.embed(samples)

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """The learner's log-probs (temperature 1) of a fixed completion; every rank must call
        under ZeRO-3 (the forward pass gathers partitions)."""
        return self.learner.sequence_logprobs(prompt_ids, completion_ids)

    # -- weight sync, collective method (learner rank 0 sends) ------------------------------
    def prepare_weights(self) -> list[tuple[str, str, list[int]]] | None:
        """Gather the full weights (every rank must call: ZeRO-3 gathers collectively); rank 0
        keeps them for ``send_prepared`` and returns their specs, the others None."""
        from seedgrpo.learner.weight_sync import tensor_specs

        self._prepared = self.learner.full_state_dict()
        return None if self._prepared is None else tensor_specs(self._prepared)

    def open_sync_group(self, host: str, port: int, world_size: int, backend: str) -> None:
        from seedgrpo.learner.sync_group import open_sync_group

        self._sync_group = open_sync_group(host, port, 0, world_size, backend)

    def send_prepared(self) -> int:
        from seedgrpo.learner.weight_sync import send_tensors

        sent = send_tensors(self._sync_group, self._prepared)
        self._prepared = None
        return sent

    def save_checkpoint(self, directory: str, tag: str, client_state: dict[str, Any]) -> None:
        self.learner.save_checkpoint(directory, tag, client_state)

    def load_checkpoint(self, directory: str, tag: str) -> dict[str, Any]:
        return self.learner.load_checkpoint(directory, tag)
