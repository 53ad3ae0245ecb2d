"""One DeepSpeed ZeRO learner rank: the policy, its optimizer, and the PPO-clip update.

Runs inside a Ray actor (``seedgrpo.runtime.actors.LearnerActor``); every rank of a trial joins
one process group (gloo on CPU, nccl on GPU). Each optimizer step sees this rank's equal share of
the P x G responses, cut into micro-batches whose gradients accumulate locally and are reduced
across ranks once, at the step (``coalesce_grad_reduction``): ZeRO-2 would otherwise
reduce-scatter the whole gradient after every micro-batch, which on gloo costs more than the
micro-batch itself.

Gradient scale: the library's loss is normalised by the *global* token/response counts, so the
sum of all ranks' micro-batch losses is the loss of the whole batch. DeepSpeed averages over
ranks; multiplying by world_size undoes it, so the update is the gradient of the global loss
whatever the split (DeepSpeed's own accumulation count is 1: one ``step()`` per update).

A rank can be reset for the next trial of a sweep (``reset``): the process, its process group
and its imports stay; the DeepSpeed engine is built again from the base model, so weights,
optimizer, scheduler and RNGs start exactly as a cold start would.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from seedgrpo.algorithms.losses import policy_loss
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.learner.batch import TrainSample, collate, response_embeddings, token_logprobs
from seedgrpo.models import load_causal_lm, load_tokenizer
from seedgrpo.runtime.checkpoint import check_checkpoint_owner

__all__ = ["LearnerRank", "lr_factor", "deepspeed_config"]

logger = logging.getLogger(__name__)


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    >>> [lr_factor(s, total=4, warmup=2, schedule="linear") for s in range(4)]  # warm-up, decay
    [0.5, 1.0, 1.0, 0.5]
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # cosine


def deepspeed_config(cfg: ExperimentConfig, *, backend: str = "gloo") -> dict[str, Any]:
    """The DeepSpeed config of a trial (ZeRO stage, AdamW, clipping, precision).

    DeepSpeed's accumulation count is 1: the rank accumulates its micro-batches itself and
    calls ``step()`` once per update (see the module docstring). On gloo, ZeRO's gradient
    reduction is one plain all-reduce of the bucket (``reduce_scatter`` off): its reduce-scatter
    path copies the bucket slice by slice around the collective, which took twice as long as
    the all-reduce itself on a 2-core machine. nccl keeps DeepSpeed's default.
    """
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.train.micro_batch_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": cfg.learner.zero_stage,
                              "reduce_scatter": backend != "gloo"},
        # torch_adam: no JIT-built fused kernels (a cold build takes minutes on CPU)
        "optimizer": {"type": "AdamW", "params": {"lr": cfg.train.lr, "torch_adam": True,
                                                  "weight_decay": cfg.train.weight_decay}},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.train.grad_clip is not None:
        ds["gradient_clipping"] = cfg.train.grad_clip
    if cfg.model.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    elif cfg.model.dtype == "float16":
        ds["fp16"] = {"enabled": True}
    return ds


def _skip_shm_build() -> None:
    """DeepSpeed JIT-builds a shared-memory comm op at every cold start (~30 s on CPU); gloo does
    not need it. Replace the builder before init."""
    import deepspeed.comm.torch  # noqa: F401

    sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None


class LearnerRank:
    """The state and update of one rank; thin enough to unit-test without Ray."""

    def __init__(self, cfg: ExperimentConfig, *, model_dir: str, rank: int, world_size: int,
                 master_addr: str, master_port: int, num_threads: int | None = None) -> None:
        self.rank, self.world_size = rank, world_size
        self.model_dir = Path(model_dir)
        self.on_gpu = torch.cuda.is_available()
        self._configure_env(master_addr, master_port)
        self._init_distributed(cfg)
        self.pad_id = load_tokenizer(self.model_dir).pad_token_id
        self.engine: Any = None
        self.reset(cfg, num_threads=num_threads)

    def _configure_env(self, master_addr: str, master_port: int) -> None:
        os.environ.update({"MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port),
                           "RANK": str(self.rank), "WORLD_SIZE": str(self.world_size),
                           "LOCAL_RANK": "0" if not self.on_gpu else os.environ.get(
                               "LOCAL_RANK", "0")})
        if not self.on_gpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")

    def _init_distributed(self, cfg: ExperimentConfig) -> None:
        import deepspeed

        backend = cfg.learner.backend
        if backend == "auto":
            backend = "nccl" if self.on_gpu else "gloo"
        self.backend = backend
        _skip_shm_build()
        deepspeed.init_distributed(dist_backend=backend)

    # -- (re)building the engine ---------------------------------------------------------------
    def reset(self, cfg: ExperimentConfig, *, num_threads: int | None = None) -> None:
        """Build the policy, optimizer and scheduler of ``cfg``'s trial from the base model.

        Called at start and for each later trial on this rank: the previous engine is freed
        first, so a long sweep holds one model's state per rank, not one per trial.
        ``num_threads``: the cores this rank may use (``config.resources.actor_threads``);
        unset = this machine's cores shared by the ranks.
        """
        import deepspeed

        self.cfg = cfg
        self._release()
        if not self.on_gpu:
            torch.set_num_threads(num_threads or max(1, (os.cpu_count() or 1)
                                                     // self.world_size))
        torch.manual_seed(cfg.train.seed)  # the RNG a cold start would have
        local = cfg.train.prompts_per_step * cfg.algorithm.group_size // self.world_size
        self.accumulation_steps = math.ceil(local / cfg.train.micro_batch_size)
        self.steps_done = 0
        # transformers runs gradient checkpointing without a key-value cache, which sharing a
        # prompt between its responses needs: then whole sequences run instead
        self.share_prompts = not cfg.model.gradient_checkpointing
        model = load_causal_lm(self.model_dir, dtype=cfg.model.dtype,
                               gradient_checkpointing=cfg.model.gradient_checkpointing)
        total = cfg.train.steps * cfg.train.ppo_epochs

        def schedule(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
                s, total=total, warmup=cfg.train.warmup_steps, schedule=cfg.train.lr_schedule))

        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=model, model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=deepspeed_config(cfg, backend=self.backend), lr_scheduler=schedule,
        )
        self.reference = None
        if cfg.algorithm.kl_coef > 0:  # a frozen copy for the k3 KL term
            self.reference = load_causal_lm(self.model_dir, dtype=cfg.model.dtype).eval()
            self.reference.requires_grad_(False)
            self.reference.to(self.engine.device)

    def _release(self) -> None:
        if self.engine is None:
            return
        self.engine.destroy()
        self.engine = self.scheduler = self.reference = None
        gc.collect()

    @property
    def policy(self) -> torch.nn.Module:
        """The transformers model inside the DeepSpeed engine."""
        return self.engine.module

    # -- the update -------------------------------------------------------------------------
    def _micro_batches(self, samples: list[TrainSample]) -> list[list[TrainSample]]:
        size = self.cfg.train.micro_batch_size
        return [samples[i : i + size] for i in range(0, len(samples), size)]

    def train_step(self, samples: list[TrainSample], *, num_tokens: int, num_responses: int,
                   behaviour_logprobs: bool = False) -> dict[str, float]:
        """One optimizer step per PPO epoch over this rank's share; returns summed stats.

        ``behaviour_logprobs``: the batch came from weights older than the learner's (a stale
        batch), so pi_old is the rollout's own log-probs. Otherwise pi_old is the policy before
        this step's first update: the first epoch's own forward pass, kept (the optimizer steps
        only after every micro-batch of an epoch), so no pass is spent on it alone.
        """
        algo, temperature = self.cfg.algorithm, self.cfg.rollout.temperature
        micro = self._micro_batches(samples)
        if len(micro) != self.accumulation_steps:
            raise ValueError(f"rank {self.rank} got {len(samples)} responses for "
                             f"{self.accumulation_steps} micro-batches; the split changed")
        batches = [collate(m, self.pad_id).to(self.engine.device) for m in micro]
        totals = {"loss": 0.0, "pg_loss": 0.0, "clip_frac": 0.0, "kl": 0.0,
                  "rollout_logprob_diff": 0.0}
        old: list[torch.Tensor | None] = [None] * len(batches)
        epochs = self.cfg.train.ppo_epochs
        self.engine.train()
        for epoch in range(epochs):
            with self.engine.coalesce_grad_reduction():  # one reduction per optimizer step
                for i, batch in enumerate(batches):
                    logp = token_logprobs(self.policy, batch, temperature=temperature,
                                          share_prompts=self.share_prompts)
                    if behaviour_logprobs:  # engines lag the learner: the behaviour policy
                        old_lp = batch.rollout_logprobs
                    else:
                        if old[i] is None:  # epoch 0: pi_old = the policy before any update
                            old[i] = logp.detach()
                        old_lp = old[i]
                    ref = None
                    if self.reference is not None:
                        with torch.no_grad():
                            ref = token_logprobs(self.reference, batch, temperature=temperature,
                                                 share_prompts=self.share_prompts)
                    loss, stats = policy_loss(
                        logp, old_lp, batch.advantages, batch.response_mask,
                        clip_eps_low=algo.clip_eps, clip_eps_high=algo.clip_eps_high,
                        aggregation=algo.loss_aggregation,
                        max_response_len=self.cfg.rollout.max_new_tokens, ref_logprobs=ref,
                        kl_coef=algo.kl_coef, num_tokens=num_tokens,
                        num_responses=num_responses,
                    )
                    self.engine.backward(loss * self.world_size)
                    weight = float(batch.response_mask.sum())
                    totals["loss"] += loss.item() / epochs
                    totals["pg_loss"] += stats["pg_loss"]
                    totals["clip_frac"] += stats["clip_frac"] * weight
                    totals["kl"] += stats["kl"] * weight
                    if epoch == 0:  # the learner before this step vs the engine
                        diff = (logp.detach() - batch.rollout_logprobs).abs() * \
                            batch.response_mask
                        totals["rollout_logprob_diff"] += float(diff.sum())
            self.engine.step()
        self.steps_done += 1
        tokens = sum(float(b.response_mask.sum()) for b in batches)
        grad_norm = self.engine.get_global_grad_norm()
        # clip_frac and kl are summed over every epoch's tokens, rollout_logprob_diff over the
        # first epoch's: the driver divides by token_updates and tokens
        return {**totals, "tokens": tokens, "token_updates": tokens * epochs,
                "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "lr": float(self.scheduler.get_last_lr()[0])}

    @torch.no_grad()
    def embed(self, samples: list[TrainSample]) -> list[list[float]]:
        """GCPO's response embeddings for this rank's share (every rank calls: under ZeRO-3 the
        forward pass gathers partitions collectively)."""
        self.engine.eval()
        rows: list[list[float]] = []
        for micro in self._micro_batches(samples):
            batch = collate(micro, self.pad_id).to(self.engine.device)
            rows += response_embeddings(self.policy, batch).cpu().tolist()
        return rows

    @torch.no_grad()
    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """Log-probs at temperature 1 of ``completion_ids`` after ``prompt_ids`` (sync checks)."""
        sample = TrainSample(prompt_ids, completion_ids, 0.0, [0.0] * len(completion_ids))
        batch = collate([sample], self.pad_id).to(self.engine.device)
        self.engine.eval()
        logp = token_logprobs(self.policy, batch)[0]
        return logp[batch.response_mask[0].bool()].tolist()

    # -- weights and checkpoints ------------------------------------------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """Rank 0: the full weights (ZeRO-3 partitions gathered); others: None. Collective."""
        if self.cfg.learner.zero_stage == 3:
            state = self.engine._zero3_consolidated_16bit_state_dict()  # every rank must call
        else:
            state = self.policy.state_dict() if self.rank == 0 else None
        if self.rank != 0 or state is None:
            return None
        tied = getattr(self.policy.config, "tie_word_embeddings", False)
        # clone(): under ZeRO-1/2 every parameter is a view into one flat buffer, and pickling a
        # view pickles its whole storage: 270 views of a 540 MB buffer exhausted 24 GB. The
        # copy also lets the next step update the weights while the engines load these.
        return {k: v.detach().to("cpu").clone() for k, v in state.items()
                if not (tied and k == "lm_head.weight")}

    def save_checkpoint(self, directory: str, tag: str, client_state: dict[str, Any]) -> None:
        # save_latest=False: the trial writes 'latest' itself, after the trainer state, so a run
        # killed mid-save never points at a checkpoint without one
        self.engine.save_checkpoint(directory, tag=tag, client_state=client_state,
                                    save_latest=False)

    def load_checkpoint(self, directory: str, tag: str) -> dict[str, Any]:
        # DeepSpeed unpickles (torch.load(weights_only=False)): refused here, on the node that
        # loads, unless this user owns every file or the config trusts their owner
        if not self.cfg.train.trust_checkpoint_owner:
            check_checkpoint_owner(Path(directory), tag,
                                   opt_in="set train.trust_checkpoint_owner: true")
        path, client_state = self.engine.load_checkpoint(directory, tag=tag)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint '{tag}' in {directory}")
        self.steps_done = int(client_state["step"])
        return client_state
