"""The Ray actors of one trial: thin shells, each owning one resource.

- ``RolloutActor``: one engine (vLLM or HF): generation and weight loading.
- ``ScorerActor``: rewards and advantages; a plain sync actor, so math-verify's worker and its
  counters live in one process.
- ``LearnerActor``: one DeepSpeed rank (``seedgrpo.learner.rank.LearnerRank``).

The runtime drives them through ``RolloutGroup``, ``Scorer`` and ``LearnerGroup``, never one by
one. Completions reach the scorer and the learners as object references (a list of the rollout
workers' shards, read with ``ray.get`` here), not through the trial driver. Configs cross the
actor boundary as plain dicts (validated again inside), so actors never depend on pickling
pydantic models across Ray versions. Every actor can be reset for the next trial of a sweep.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import ray

from seedgrpo.config.resources import actor_threads
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.rollout.types import Completion, SamplingSettings
from seedgrpo.runtime.batches import join_shards, rank_mini_batches, rank_share, train_samples

__all__ = ["RolloutActor", "ScorerActor", "LearnerActor", "free_port", "peak_rss_mb"]

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A free TCP port on this node (for a rendezvous that this process will host)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def peak_rss_mb() -> float:
    """Peak resident memory of this process plus its live children (vLLM's engine processes),
    in MiB: each process's high-water mark (VmHWM), summed."""
    import psutil

    total = 0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
                hwm = next((line for line in status if line.startswith("VmHWM:")), None)
            total += int(hwm.split()[1]) * 1024 if hwm else proc.memory_info().rss
        except (OSError, psutil.Error):
            continue  # a child that ended meanwhile
    return total / 2**20


@ray.remote
class RolloutActor:
    """One rollout engine. ``engine`` is ``hf`` or ``vllm`` (``auto`` is resolved by the caller);
    ``index`` is the worker's place in its trial (it picks the engine's cores on CPU)."""

    def __init__(self, config: dict[str, Any], model_dir: str, engine: str,
                 index: int = 0) -> None:
        from seedgrpo.rollout.factory import make_engine

        cfg = ExperimentConfig.model_validate(config)
        self.kind = engine
        self.version = 0  # the learner's optimizer steps behind the weights held
        self._set_threads(cfg)
        self.engine = make_engine(engine, model_dir, dtype=cfg.model.dtype,
                                  max_model_len=cfg.model.max_seq_len, seed=cfg.train.seed,
                                  gpu_memory_utilization=cfg.rollout.gpu_memory_utilization,
                                  threads=self.threads[False], index=index)

    def _set_threads(self, cfg: ExperimentConfig) -> None:
        """Threads while the learners may be learning, and when nothing else runs (an
        evaluation)."""
        self.threads = {False: actor_threads(cfg, "rollout_worker"),
                        True: actor_threads(cfg, "rollout_worker", alone=True)}

    def ready(self) -> str:
        return self.kind

    @ray.method(num_returns=2)
    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings,
                 alone: bool = False) -> tuple[list[list[Completion]], dict[str, float]]:
        """The groups, and what the driver reads: the weights' version, seconds and tokens.

        ``alone``: nothing else of the trial runs meanwhile (evaluation), so an engine that
        can change its thread count (HF) takes the trial's whole share of cores."""
        start = time.monotonic()
        if self.kind == "hf":  # vLLM pins its threads when it starts
            import torch

            torch.set_num_threads(self.threads[alone])
        groups = self.engine.generate(prompt_ids, settings)
        tokens = sum(len(c.token_ids) for g in groups for c in g)
        return groups, {"version": self.version, "seconds": time.monotonic() - start,
                        "tokens": tokens}

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        return self.engine.sequence_logprobs(prompt_ids, completion_ids)

    def load_state(self, state: dict[str, Any], version: int) -> float:
        """Weights that came through Ray's object store (learner rank 0's full state dict);
        returns the seconds the engine spent loading them."""
        start = time.monotonic()
        self.engine.load_weights(state.items())
        self.version = version
        return time.monotonic() - start

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str) -> None:
        self.engine.join_weight_group(host, port, rank, world_size, backend)

    def receive_weights(self, specs: list[tuple[str, str, list[int]]], version: int) -> float:
        """One broadcast of the learner's weights; returns the seconds it took here."""
        start = time.monotonic()
        self.engine.receive_weights(specs)
        self.version = version
        return time.monotonic() - start

    def reset(self, config: dict[str, Any]) -> None:
        """Back to the base model's weights, for the next trial (of ``config``)."""
        self._set_threads(ExperimentConfig.model_validate(config))
        self.engine.reset_weights()
        self.version = 0

    def peak_rss_mb(self) -> float:
        return peak_rss_mb()


@ray.remote
class ScorerActor:
    """Rewards, clusters, semantic entropy and advantages for a step's groups."""

    def __init__(self, config: dict[str, Any]) -> None:
        from seedgrpo.evaluation import BenchmarkGrader
        from seedgrpo.rewards import Verifier

        self.reset(config)
        self.verifier = Verifier()
        self.benchmark_grader = BenchmarkGrader()  # its own verifier, with a longer bound

    def reset(self, config: dict[str, Any]) -> None:
        """The next trial's algorithm, and its verification counters from zero."""
        self.algo = ExperimentConfig.model_validate(config).algorithm
        if hasattr(self, "verifier"):
            from seedgrpo.rewards.verifier import VerifierCounters

            self.verifier.counters = VerifierCounters()

    def score(self, golds: list[str], shards: list[Any], embeddings: list[Any] | None
              ) -> Any:
        """``shards``: the rollout workers' references; ``embeddings``: the learner ranks'
        references to their shares' embedding rows (GCPO), or None."""
        from seedgrpo.runtime.scoring import score_batch

        groups = join_shards(ray.get(shards))
        rows = join_shards(ray.get(embeddings)) if embeddings is not None else None
        start = time.monotonic()  # the scorer's own time, not its wait for the inputs
        from seedgrpo.algorithms import uncertainty_needs_embeddings

        per_group = self._group_embeddings(
            groups, rows, gcpo=uncertainty_needs_embeddings(self.algo.uncertainty))
        scored = score_batch(groups, golds, self.algo, verifier=self.verifier,
                             embeddings=per_group)
        scored.metrics["time/score_s"] = time.monotonic() - start
        # the outcomes a reward depends on; the verifier's cost counters (checks, parses, cache
        # hits, worker starts) depend on what a warm scorer did before, so they stay out
        scored.metrics.update({f"reward/verify_{k}_total": float(v)
                               for k, v in self.verifier_counters().items()
                               if k in ("errors", "timeouts", "refused")})
        return scored

    def _group_embeddings(self, groups: list[list[Completion]], rows: list[Any] | None, *,
                          gcpo: bool) -> list[list[list[float]]] | None:
        """(P, G, D) response embeddings: the learners' ``rows`` (prompt order) when given;
        else, for GCPO with ``gcpo.embedding`` ``encoder`` / ``answer``, the sentence
        encoder's (``runtime.encoder``); else None."""
        if rows is not None:
            g = len(groups[0]) if groups else 0
            return [rows[i * g:(i + 1) * g] for i in range(len(groups))]
        gcpo_cfg = self.algo.gcpo
        if not gcpo or gcpo_cfg.embedding == "policy":
            return None
        from seedgrpo.runtime.encoder import group_embeddings, load_encoder

        return group_embeddings(load_encoder(str(gcpo_cfg.encoder)), groups,
                                gcpo_cfg.embedding)

    def gcpo_uncertainties(self, shards: list[Any], scored: Any,
                           embeddings: list[Any] | None) -> list[float]:
        """GCPO's U of every group of a step that was not scored with it (the
        gradient-variance diagnostic compares U with SE on every run): from the learners'
        embedding rows when given, else from the sentence encoder; with ``algorithm.gcpo``'s
        measure and kappa."""
        from seedgrpo.algorithms import gcpo_uncertainty

        groups = join_shards(ray.get(shards))
        rows = join_shards(ray.get(embeddings)) if embeddings is not None else None
        per_group = self._group_embeddings(groups, rows, gcpo=True)
        gcpo = self.algo.gcpo
        return [gcpo_uncertainty(e, s.rewards, measure=gcpo.measure, kappa=gcpo.kappa)
                for e, s in zip(per_group or [], scored.scores, strict=True)]

    def grade(self, rule: str, problems: list[Any], texts: list[list[str]]) -> Any:
        """Benchmark grading (evaluation): verdicts and answer clusters, no advantages."""
        return self.benchmark_grader(rule, problems, texts)

    def verifier_counters(self) -> dict[str, int]:
        return self.verifier.counter_values()

    def peak_rss_mb(self) -> float:
        return peak_rss_mb()


@ray.remote
class LearnerActor:
    """One DeepSpeed rank. ``setup`` joins the process group (rank 0 hosts the rendezvous)."""

    def __init__(self, config: dict[str, Any], model_dir: str, rank: int,
                 world_size: int) -> None:
        self.config, self.model_dir = config, model_dir
        self.rank, self.world_size = rank, world_size
        self.learner: Any = None
        self._prepared: dict[str, Any] | None = None
        self._weight_group = None

    def rendezvous(self) -> tuple[str, int]:
        """This node's address and a free port on it (rank 0 hosts the process group and the
        weight-sync group)."""
        return ray.util.get_node_ip_address(), free_port()

    def setup(self, master_addr: str, master_port: int) -> int:
        from seedgrpo.learner.rank import LearnerRank

        cfg = ExperimentConfig.model_validate(self.config)
        self.learner = LearnerRank(cfg, model_dir=self.model_dir, rank=self.rank,
                                   world_size=self.world_size, master_addr=master_addr,
                                   master_port=master_port,
                                   num_threads=actor_threads(cfg, "learner_rank"))
        return self.rank

    def reset(self, config: dict[str, Any]) -> None:
        """The next trial's policy, optimizer and scheduler, from the base model."""
        self.config = config
        cfg = ExperimentConfig.model_validate(config)
        self.learner.reset(cfg, num_threads=actor_threads(cfg, "learner_rank"))

    def _share(self, prompt_ids: list[list[int]], shards: list[Any],
               advantages: list[list[float]] | None) -> tuple[list[Any], int, int]:
        samples = train_samples(prompt_ids, join_shards(ray.get(shards)), advantages)
        tokens = sum(len(s.response_ids) for s in samples)
        return rank_share(samples, self.rank, self.world_size), tokens, len(samples)

    def train(self, prompt_ids: list[list[int]], shards: list[Any], scored: Any,
              behaviour_logprobs: bool) -> dict[str, float]:
        """One update on this rank's share of the step (``scored``: the scorer's batch): its
        share of each mini-batch, with each mini-batch's global loss normalisers."""
        from seedgrpo.learner.batch import loss_counts

        train = self.learner.cfg.train
        samples = train_samples(prompt_ids, join_shards(ray.get(shards)), scored.advantages)
        size = train.mini_batch_size or len(samples)
        counts = [loss_counts(samples[i:i + size], overlong_filter=train.overlong_filter)
                  for i in range(0, len(samples), size)]
        shares = rank_mini_batches(samples, self.rank, self.world_size, size)
        start = time.monotonic()
        stats = self.learner.train_step(shares, num_tokens=[t for t, _ in counts],
                                        num_responses=[r for _, r in counts],
                                        behaviour_logprobs=behaviour_logprobs)
        return {**stats, "seconds": time.monotonic() - start}

    def embed(self, prompt_ids: list[list[int]], shards: list[Any]) -> list[list[float]]:
        share, _, _ = self._share(prompt_ids, shards, None)
        return self.learner.embed(share)

    def gradient_probe(self, prompt_ids: list[list[int]], shards: list[Any], scored: Any,
                       seed: int, directions: int) -> dict[str, Any]:
        """The gradient-variance diagnostic on this rank's share of the step: each response's
        projected policy gradient under the current weights (pi_old: the trial submits it
        before the step's ``train``), with the group's unmodulated baseline advantage; None for
        the responses of groups whose advantages are all zero."""
        from seedgrpo.algorithms import group_advantages

        baseline = self.learner.cfg.algorithm.baseline
        advantages = [group_advantages(s.rewards, baseline) for s in scored.scores]
        samples = train_samples(prompt_ids, join_shards(ray.get(shards)), advantages)
        include = [any(a != 0.0 for a in group) for group in advantages
                   for _ in range(len(group))]
        mean_len = sum(len(s.response_ids) for s in samples) / max(1, len(samples))
        start = time.monotonic()
        rows = self.learner.gradient_probe(
            rank_share(samples, self.rank, self.world_size),
            rank_share(include, self.rank, self.world_size), directions=directions, seed=seed,
            mean_response_len=max(1.0, mean_len))
        return {"projections": rows, "seconds": time.monotonic() - start}

    def version(self) -> int:
        return self.learner.steps_done

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """The learner's log-probs (temperature 1) of a fixed completion; every rank must call
        under ZeRO-3 (the forward pass gathers partitions)."""
        return self.learner.sequence_logprobs(prompt_ids, completion_ids)

    # -- weight sync (seedgrpo.models.weight_sync) -----------------------------------------
    def full_state_dict(self) -> dict[str, Any] | None:
        return self.learner.full_state_dict()

    def prepare_broadcast(self) -> list[tuple[str, str, list[int]]] | None:
        """Gather the full weights (every rank must call: ZeRO-3 gathers collectively); rank 0
        keeps them for ``broadcast`` and returns their specs, the others None."""
        from seedgrpo.models.weight_sync import tensor_specs

        self._prepared = self.learner.full_state_dict()
        return None if self._prepared is None else tensor_specs(self._prepared)

    def open_weight_group(self, host: str, port: int, world_size: int, backend: str) -> None:
        from seedgrpo.models.weight_sync import open_sync_group

        self._weight_group = open_sync_group(host, port, 0, world_size, backend)

    def broadcast(self) -> int:
        from seedgrpo.models.weight_sync import send_tensors

        sent = send_tensors(self._weight_group, self._prepared)
        self._prepared = None
        return sent

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, directory: str, tag: str, client_state: dict[str, Any]) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.learner.save_checkpoint(directory, tag, client_state)

    def load_checkpoint(self, directory: str, tag: str) -> dict[str, Any]:
        return self.learner.load_checkpoint(directory, tag)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb()
