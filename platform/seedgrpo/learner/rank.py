"""One DeepSpeed ZeRO learner rank: the policy, its optimizer, and the PPO-clip update.

Runs inside a Ray actor (``seedgrpo.runtime.actors.LearnerActor``); every rank of a trial joins
one process group (gloo on CPU, nccl on GPU).

Mini-batches: a step's P x G responses make ``train.mini_batch_size`` M-response optimizer
steps (Oat, the code base SEED-GRPO builds on, takes 8 clipped steps per rollout of 128 x 8);
unset, M = P x G and the step is one optimizer step, as before mini-batches existed. Global
mini-batch m is responses [m M, (m + 1) M) in prompt order, and each rank takes its contiguous
equal share of it (``runtime.batches.rank_mini_batches``), so an optimizer step sees the same
responses whatever the rank count. ``ppo_epochs`` passes run over every mini-batch.

pi_old is the policy that generated the batch, the same for every mini-batch: the rollout
engines' log-probs when they lag the learner (a stale batch); otherwise the learner's own,
computed before the first update. Mini-batch 0 reuses its first forward pass for it (the
optimizer steps only after all its micro-batches); the later ones get one no-grad pass before
any step. Without that pass their ratio would be 1 at their own first epoch and the clip would
never act, which is how one-step-per-rollout GRPO trains.

Each optimizer step sees this rank's share of one mini-batch, cut into micro-batches whose
gradients accumulate locally and are reduced across ranks once, at the step
(``coalesce_grad_reduction``): ZeRO-2 would otherwise reduce-scatter the whole gradient after
every micro-batch, which on gloo costs more than the micro-batch itself.

Gradient scale: the library's loss is normalised by the mini-batch's *global* token/response
counts (computed from every rank's responses by the caller), so the sum of all ranks'
micro-batch losses is the loss of the whole mini-batch. DeepSpeed averages over ranks;
multiplying by world_size undoes it, so each update is the gradient of the global mini-batch
loss whatever the split (DeepSpeed's own accumulation count is 1: one ``step()`` per update).

``train.overlong_filter``: a response cut off at the length limit is masked out of the loss;
the caller leaves it out of the normalisers too (``learner.batch.loss_counts``).

A rank can be reset for the next trial of a sweep (``reset``): the process, its process group
and its imports stay; the DeepSpeed engine is built again from the base model, so weights,
optimizer, scheduler and RNGs start exactly as a cold start would.
"""

from __future__ import annotations

import gc
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from seedgrpo._compat import skip_deepspeed_shm_build, zero3_full_state_dict
from seedgrpo.algorithms.losses import policy_loss
from seedgrpo.config.resources import resolve_learner_backend
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.learner.batch import (
    TrainBatch,
    TrainSample,
    collate,
    response_embeddings,
    token_logprobs,
)
from seedgrpo.models import load_causal_lm, load_tokenizer
from seedgrpo.models.checkpoint_files import check_checkpoint_owner

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
    """The DeepSpeed config of a trial (ZeRO stage, AdamW and its betas/eps, clipping,
    precision).

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
        "optimizer": {"type": "AdamW", "params": {
            "lr": cfg.train.lr, "torch_adam": True, "weight_decay": cfg.train.weight_decay,
            "betas": list(cfg.train.adam_betas), "eps": cfg.train.adam_eps}},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    # 0 = no clipping; left out, DeepSpeed clips at its default (1.0), so 'unset' must be said
    ds["gradient_clipping"] = 0.0 if cfg.train.grad_clip is None else cfg.train.grad_clip
    if cfg.model.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    elif cfg.model.dtype == "float16":
        ds["fp16"] = {"enabled": True}
    return ds


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

        self.backend = resolve_learner_backend(cfg.learner.backend, has_gpu=self.on_gpu)
        skip_deepspeed_shm_build()
        deepspeed.init_distributed(dist_backend=self.backend)

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
        responses = cfg.train.prompts_per_step * cfg.algorithm.group_size
        mini = cfg.train.mini_batch_size or responses
        self.mini_batches = responses // mini  # optimizer steps per PPO epoch
        # micro-batches per optimizer step on this rank
        self.accumulation_steps = math.ceil(mini // self.world_size / cfg.train.micro_batch_size)
        self.steps_done = 0
        # transformers runs gradient checkpointing without a key-value cache, which sharing a
        # prompt between its responses needs: then whole sequences run instead
        self.share_prompts = not cfg.model.gradient_checkpointing
        model = load_causal_lm(self.model_dir, dtype=cfg.model.dtype,
                               gradient_checkpointing=cfg.model.gradient_checkpointing)
        total = cfg.train.steps * cfg.train.ppo_epochs * self.mini_batches  # optimizer steps

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

    def _loss_mask(self, batch: TrainBatch) -> torch.Tensor:
        """The tokens the loss reads: the responses', less truncated responses' under
        ``train.overlong_filter``."""
        if not self.cfg.train.overlong_filter:
            return batch.response_mask
        return batch.response_mask * (~batch.truncated)[:, None].to(batch.response_mask.dtype)

    def train_step(self, mini_batches: list[list[TrainSample]], *, num_tokens: list[float],
                   num_responses: list[float], behaviour_logprobs: bool = False
                   ) -> dict[str, float]:
        """``ppo_epochs`` passes over the step's mini-batches, one optimizer step each; returns
        this rank's summed stats.

        ``mini_batches``: this rank's share of each global mini-batch (in order);
        ``num_tokens`` / ``num_responses``: each global mini-batch's loss normalisers (every
        rank's responses, ``learner.batch.loss_counts``). ``behaviour_logprobs``: the batch came
        from weights older than the learner's (a stale batch), so pi_old is the rollout's own
        log-probs; otherwise the learner's before this step's first update (module docstring).
        """
        algo, temperature = self.cfg.algorithm, self.cfg.rollout.temperature
        if not len(mini_batches) == len(num_tokens) == len(num_responses) == self.mini_batches:
            raise ValueError(f"rank {self.rank} got {len(mini_batches)} mini-batches, "
                             f"{len(num_tokens)} token counts and {len(num_responses)} response "
                             f"counts for {self.mini_batches} mini-batches; the split changed")
        batches: list[list[TrainBatch]] = []
        for share in mini_batches:
            micro = self._micro_batches(share)
            if len(micro) != self.accumulation_steps:
                raise ValueError(f"rank {self.rank} got {len(share)} responses for "
                                 f"{self.accumulation_steps} micro-batches; the split changed")
            batches.append([collate(m, self.pad_id).to(self.engine.device) for m in micro])
        masks = [[self._loss_mask(b) for b in micro] for micro in batches]
        totals = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0,
                  "rollout_logprob_diff": 0.0, "entropy": 0.0, "token_updates": 0.0}
        epochs = self.cfg.train.ppo_epochs
        optimizer_steps = epochs * len(batches)
        old: list[list[torch.Tensor | None]] = [[None] * len(micro) for micro in batches]

        def first_look(batch: TrainBatch, logp: torch.Tensor, entropy: torch.Tensor) -> None:
            """The learner before this step (or at its first pass over a stale batch) vs the
            engine, and the policy's token entropy: over every response token, once."""
            diff = (logp.detach() - batch.rollout_logprobs).abs() * batch.response_mask
            totals["rollout_logprob_diff"] += float(diff.sum())
            totals["entropy"] += float((entropy * batch.response_mask).sum())

        self.engine.train()
        if not behaviour_logprobs:  # pi_old of mini-batches 1.. before the first step
            with torch.no_grad():
                for m in range(1, len(batches)):
                    for i, batch in enumerate(batches[m]):
                        logp, entropy = token_logprobs(
                            self.policy, batch, temperature=temperature,
                            share_prompts=self.share_prompts, with_entropy=True)
                        old[m][i] = logp
                        first_look(batch, logp, entropy)
        for epoch in range(epochs):
            for m, micro in enumerate(batches):
                with self.engine.coalesce_grad_reduction():  # one reduction per optimizer step
                    for i, batch in enumerate(micro):
                        look = epoch == 0 and old[m][i] is None
                        logp = token_logprobs(self.policy, batch, temperature=temperature,
                                              share_prompts=self.share_prompts,
                                              with_entropy=look)
                        if look:
                            logp, entropy = logp
                            first_look(batch, logp, entropy)
                        if behaviour_logprobs:  # engines lag the learner: the behaviour policy
                            old_lp = batch.rollout_logprobs
                        else:
                            if old[m][i] is None:  # mini-batch 0, epoch 0: before any update
                                old[m][i] = logp.detach()
                            old_lp = old[m][i]
                        ref = None
                        if self.reference is not None:
                            with torch.no_grad():
                                ref = token_logprobs(self.reference, batch,
                                                     temperature=temperature,
                                                     share_prompts=self.share_prompts)
                        mask = masks[m][i]
                        loss, stats = policy_loss(
                            logp, old_lp, batch.advantages, mask,
                            clip_eps_low=algo.clip_eps, clip_eps_high=algo.clip_eps_high,
                            aggregation=algo.loss_aggregation,
                            max_response_len=self.cfg.rollout.max_new_tokens, ref_logprobs=ref,
                            kl_coef=algo.kl_coef, num_tokens=num_tokens[m],
                            num_responses=num_responses[m],
                        )
                        self.engine.backward(loss * self.world_size)
                        weight = float(mask.sum())
                        totals["loss"] += loss.item() / optimizer_steps
                        totals["clip_frac"] += stats["clip_frac"] * weight
                        totals["kl"] += stats["kl"] * weight
                        totals["token_updates"] += weight
                self.engine.step()
        self.steps_done += 1
        tokens = sum(float(b.response_mask.sum()) for micro in batches for b in micro)
        grad_norm = self.engine.get_global_grad_norm()
        # clip_frac and kl are summed over every epoch's loss tokens (token_updates);
        # rollout_logprob_diff and entropy over the response tokens, once (tokens); loss is the
        # mean over optimizer steps of this rank's part of each mini-batch's global loss
        return {**totals, "tokens": tokens, "optimizer_steps": float(optimizer_steps),
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
            state = zero3_full_state_dict(self.engine)  # every rank must call
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

    # -- the gradient-variance diagnostic ---------------------------------------------------
    def gradient_probe(self, samples: list[TrainSample], include: list[bool], *,
                       directions: int, seed: int, mean_response_len: float
                       ) -> list[list[float] | None]:
        """Each response's policy gradient on the probe layer, projected on ``directions``
        shared random directions (``seedgrpo.learner.gradient_probe``); None where ``include``
        is False. ``samples`` carry the unmodulated advantages. Runs on the current weights
        (pi_old when called before ``train_step``) and leaves the engine's gradients,
        optimizer and weights untouched. ZeRO-1/2 only (every rank holds the full weights)."""
        from seedgrpo.learner.gradient_probe import project_responses

        if self.cfg.learner.zero_stage == 3:
            raise RuntimeError("the gradient-variance probe needs full weights on every rank; "
                               "ZeRO-3 partitions them (use learner.zero_stage 1 or 2)")
        self.engine.eval()
        return project_responses(
            self.policy, samples, include, directions=directions, seed=seed,
            pad_id=self.pad_id, aggregation=self.cfg.algorithm.loss_aggregation,
            max_response_len=self.cfg.rollout.max_new_tokens,
            mean_response_len=mean_response_len, temperature=self.cfg.rollout.temperature,
            share_prompts=self.share_prompts)
