"""One training trial on Ray: generate, score, learn, sync, evaluate, checkpoint, report.

A straight-line loop (nanoGPT's ``train.py`` is the model), over three groups of actors
(``runtime.actor_set``): the rollout engines, the scorer and the learner ranks. One step::

    batch = the step's batch            generated ahead (max_staleness 1) or now
    generate step + 1's batch           on the engines, while the learners learn this one
    learn                               each rank reads its share from the object store
    push the new weights                the engines load them after the generation in flight

With ``rollout.max_staleness`` 1 the engines are one update behind the learners: every batch
records the version of the weights that generated it, the step logs ``train/staleness``, and
the PPO ratio then uses the engines' own (behaviour) log-probs. A prefetched batch that is
still pending at a checkpoint is saved beside it, so a resumed trial learns from the same
batches as an uninterrupted one. Every remote wait has a timeout that names the phase and step.

With ``train.dynamic_sampling`` the step's batch is drawn in rounds of P prompts until P groups
carry signal (``runtime.dynamic_sampling``); only the first round is generated ahead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray

from seedgrpo.algorithms import uncertainty_needs_embeddings
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.data import DataError, PromptSampler, build_pools, render_prompt
from seedgrpo.evaluation import (
    Benchmark,
    BenchmarkNotFound,
    PreparedBenchmark,
    eval_sampling,
    load_benchmark,
    prepare_benchmark,
    run_evaluation,
)
from seedgrpo.models import load_tokenizer, resolve_model_dir
from seedgrpo.models.checkpoint_files import TrainerState, checkpoint_tag, read_latest
from seedgrpo.redact import redact_config
from seedgrpo.rollout.factory import EngineUnavailable, choose_engine
from seedgrpo.rollout.types import SamplingSettings
from seedgrpo.runtime.actor_set import ActorSet, acquire
from seedgrpo.runtime.batches import (
    StepBatch,
    TrainPrompt,
    pending_path,
    read_pending,
    write_pending,
)
from seedgrpo.runtime.checkpoint import (
    next_checkpoint_space_warning,
    prune_checkpoints,
    write_experiment,
    write_trainer_state,
)
from seedgrpo.runtime.dynamic_sampling import needs_another_round, select_groups
from seedgrpo.runtime.encoder import EncoderError, check_encoder
from seedgrpo.runtime.gradient_variance import PendingProbe, is_diagnostic_step, submit_probe
from seedgrpo.runtime.metrics import learner_metrics, with_prompt_ids
from seedgrpo.runtime.scoring import ScoredBatch
from seedgrpo.runtime.waiting import TrainingFailed
from seedgrpo.tracking.groups_file import GROUPS_FILE, append_group_rows, truncate_group_rows

__all__ = ["ActorSet", "TrainingFailed", "TrainingLoop", "check_runtime_support", "checked_engine",
           "resolve_engine"]

logger = logging.getLogger(__name__)

Reporter = Callable[[int, dict[str, float]], None]
ArtifactLogger = Callable[[Path, str], None]  # (file, artifact directory)
_SEED_STRIDE = 1_000_003  # sampling seed of step s: train.seed * stride + s
_ROUND_STRIDE = 2**32  # dynamic sampling: round r of a step adds r * this to the step's seed


def check_runtime_support(cfg: ExperimentConfig) -> None:
    """Refuse, before any actor starts, what this runtime cannot run: a sentence encoder
    that is not there (``gcpo.embedding`` encoder / answer, for GCPO or for the U of the
    gradient-variance diagnostic), and that diagnostic under ZeRO-3."""
    gcpo, every = cfg.algorithm.gcpo, cfg.diagnostics.gradient_variance_every
    embeds = uncertainty_needs_embeddings(cfg.algorithm.uncertainty)
    if gcpo.embedding != "policy" and (embeds or every):
        try:
            check_encoder(gcpo.encoder)
        except EncoderError as err:
            raise TrainingFailed(str(err)) from None
    if every and cfg.learner.zero_stage == 3:
        raise TrainingFailed("diagnostics.gradient_variance_every needs learner.zero_stage 0, 1 "
                         "or 2: the probe takes per-response gradients of the whole last "
                         "decoder layer, which ZeRO-3 partitions across the ranks; use "
                         "zero_stage 2 or set diagnostics.gradient_variance_every to 0")


def resolve_engine(cfg: ExperimentConfig) -> str:
    """``rollout.engine`` resolved (``auto`` -> vllm when it imports, else hf)."""
    try:
        return choose_engine(cfg.rollout.engine)
    except EngineUnavailable as err:
        raise TrainingFailed(str(err)) from None


def checked_engine(cfg: ExperimentConfig) -> str:
    """Everything a training run of ``cfg`` needs from this machine, checked once before any
    actor starts (``check_runtime_support``), and the rollout engine it runs on
    (``resolve_engine``): the caller checks up front, before Ray, and passes the engine to
    ``TrainingLoop`` so that nothing is checked twice."""
    check_runtime_support(cfg)
    return resolve_engine(cfg)


class TrainingLoop:
    """Runs one trial's config to the end (or from its last checkpoint).

    ``actors``: a finished trial's actors to reuse (a sweep's warm trials); they are reset, or
    replaced when this trial cannot share them. After ``run(keep_actors=True)`` (or the last
    step of ``steps()``) ``self.actors`` holds them for the next trial; otherwise they are shut
    down. ``startup_s`` is the time from the call to the first step (or evaluation).

    ``engine_kind``: the rollout engine as ``checked_engine(cfg)`` returned it, when the caller
    has checked ``cfg`` already (``seedgrpo-train``, a sweep before Ray starts); without it the
    runner checks here and refuses what it cannot run (``TrainingFailed``).
    """

    def __init__(self, cfg: ExperimentConfig, output_dir: str | Path, *,
                 report: Reporter | None = None, log_artifact: ArtifactLogger | None = None,
                 actors: ActorSet | None = None, engine_kind: str | None = None) -> None:
        self.engine_kind = engine_kind if engine_kind is not None else checked_engine(cfg)
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.report = report or (lambda step, metrics: None)
        self.log_artifact = log_artifact or (lambda path, where: None)
        self.groups_path = self.output_dir / "train" / GROUPS_FILE
        self.actors = actors
        self.reused_actors = False
        self.startup_s: float | None = None
        self._next: StepBatch | None = None  # the batch generated ahead of its step
        self._pushes: list[Any] = []  # weight loads not yet awaited

    # -- set-up -------------------------------------------------------------------------------
    def _prepare_data(self, model_dir: Path) -> None:
        cfg = self.cfg
        tokenizer = load_tokenizer(model_dir)
        pools = build_pools(cfg.data, seed=cfg.train.seed)

        def encode(problems, new_tokens: int) -> list[TrainPrompt]:
            texts = [render_prompt(p, cfg.data.template, tokenizer, pools.shots) for p in problems]
            ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            budget = cfg.model.max_seq_len - new_tokens
            kept = [TrainPrompt(str(p.id), i, p.answer)
                    for p, i in zip(problems, ids, strict=True) if len(i) <= budget]
            if len(kept) < len(problems):
                logger.warning("skipped %d prompts longer than %d tokens (model.max_seq_len - "
                               "the generation budget)", len(problems) - len(kept), budget)
            return kept

        self.train = encode(pools.train, cfg.rollout.max_new_tokens)
        if not self.train:
            raise DataError(f"every training prompt is longer than model.max_seq_len "
                            f"({cfg.model.max_seq_len}) minus rollout.max_new_tokens; raise "
                            "model.max_seq_len or use fewer data.fewshot examples")
        self.sampler = PromptSampler(len(self.train), seed=cfg.train.seed)
        self.eval_sets = [self._eval_set(name, tokenizer, pools)
                          for name in cfg.eval.benchmarks]
        for name in cfg.eval.optional_benchmarks:
            try:
                self.eval_sets.append(self._eval_set(name, tokenizer, pools))
            except BenchmarkNotFound as err:
                logger.warning("skipping optional benchmark %s: %s", name, err)

    def _eval_set(self, name: str, tokenizer: Any, pools: Any) -> PreparedBenchmark:
        """One benchmark's prompts. ``heldout`` is the held-out training split, in the training
        prompt format (few-shot included); the others are zero-shot, as in the paper."""
        cfg = self.cfg
        if name == "heldout":
            problems = pools.heldout[: cfg.eval.limits.get(name, cfg.eval.limit)]
            if not problems:
                raise DataError("eval.benchmarks includes 'heldout' but data.heldout_size is 0")
            bench = Benchmark("heldout", "math", problems, "the held-out training split")
            template, shots = cfg.data.template, pools.shots
        else:
            bench = load_benchmark(name, data_dir=cfg.eval.data_dir,
                                   custom=cfg.eval.custom_benchmarks,
                                   limit=cfg.eval.limits.get(name, cfg.eval.limit),
                                   seed=cfg.train.seed)
            template, shots = cfg.eval.template or cfg.data.template, []
        return prepare_benchmark(bench, tokenizer, template=template,
                                 max_seq_len=cfg.model.max_seq_len,
                                 max_new_tokens=cfg.eval.max_new_tokens, shots=shots)

    # -- batches ------------------------------------------------------------------------------
    def _settings(self, step: int, round_: int = 0) -> SamplingSettings:
        cfg = self.cfg
        return SamplingSettings(
            n=cfg.algorithm.group_size, max_new_tokens=cfg.rollout.max_new_tokens,
            temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            seed=cfg.train.seed * _SEED_STRIDE + step + round_ * _ROUND_STRIDE)

    def _submit(self, step: int, *, score: bool = True, round_: int = 0) -> StepBatch:
        """Draw step ``step``'s prompts and submit their generation (and scoring);
        ``round_``: the dynamic-sampling round (0: the step's first or only draw)."""
        indices = self.sampler.next_indices(self.cfg.train.prompts_per_step)
        prompts = [self.train[i] for i in indices]
        batch = self.actors.rollouts.generate(step, prompts, self._settings(step, round_))
        if score:
            self._score(batch)
        return batch

    @property
    def _learner_embeddings(self) -> bool:
        """GCPO on the policy's own hidden states: the learners embed before the scorer
        scores (with ``encoder`` / ``answer`` the scorer embeds the texts itself)."""
        algo = self.cfg.algorithm
        return (uncertainty_needs_embeddings(algo.uncertainty)
                and algo.gcpo.embedding == "policy")

    def _score(self, batch: StepBatch) -> None:
        embeddings = self.actors.learners.embed(batch) if self._learner_embeddings else None
        self.actors.scorer.score(batch, embeddings)

    def _diagnose(self, batch: StepBatch) -> PendingProbe | None:
        """The gradient-variance probe of a diagnostic step (``diagnostics.*``), submitted
        before the step's update so that it measures pi_old; None on other steps."""
        if not is_diagnostic_step(self.cfg, batch.step):
            return None
        return submit_probe(self.cfg, self.actors, batch)

    def _take(self, step: int) -> StepBatch:
        """Step ``step``'s batch: the one generated ahead, or a new one (with dynamic
        sampling, that one is the step's first round)."""
        batch, self._next = self._next, None
        if batch is None:
            batch = self._submit(step)
        elif batch.step != step:
            raise RuntimeError(f"the batch generated ahead is for step {batch.step}, not {step}")
        return self._draw_until_signal(batch) if self.cfg.train.dynamic_sampling else batch

    def _draw_until_signal(self, first: StepBatch) -> StepBatch:
        """Dynamic sampling: more rounds of P prompts after ``first`` (generated and scored
        now) until P groups carry signal or ``train.dynamic_sampling_max_rounds`` rounds are
        drawn, then the P groups the step learns from (``runtime.dynamic_sampling``).

        Only the first round can be generated ahead (``rollout.max_staleness`` 1): whether
        another is needed is known only from its scores, so the later rounds are generated
        and scored here, at the start of the step, with the newest weights the engines hold,
        while the learners wait. The pending batch a checkpoint keeps is therefore always a
        first round, and a resumed trial draws the later rounds from the saved sampler state
        exactly as the uninterrupted one did."""
        cfg, step = self.cfg.train, first.step
        rounds, rewards = [first], []
        while True:
            scored = self.actors.scorer.wait([rounds[-1].scored], "scoring", step)[0]
            rewards.append([s.rewards for s in scored.scores])
            if not needs_another_round(rewards, cfg.prompts_per_step,
                                       cfg.dynamic_sampling_max_rounds):
                break
            rounds.append(self._submit(step, round_=len(rounds)))
        selection = select_groups(rewards, cfg.prompts_per_step)
        metas = [self.actors.rollouts.wait(b.meta, "generating", step) for b in rounds]
        if selection.short:
            logger.info("step %d: %d of %d groups carry signal after %d rounds (%d prompts); "
                        "filled with all-equal groups", step,
                        cfg.prompts_per_step - selection.short, cfg.prompts_per_step,
                        len(rounds), selection.drawn)
        return self.actors.rollouts.select(rounds, selection, metas)

    def _push_weights(self, step: int) -> None:
        """Start loading the learners' weights (version ``step``) into the engines."""
        self._pushes += self.actors.weights.push(step)

    def _settle_pushes(self, step: int | None = None, *, block: bool = True) -> float:
        """Collect the weight loads in flight (all of them, or with ``block=False`` those
        already done: a load still running must not hold up learning); returns the engines'
        longest load among them, in seconds."""
        done = self._pushes
        if not block and done:
            done, self._pushes = ray.wait(done, num_returns=len(done), timeout=0)
        else:
            self._pushes = []
        loaded = self.actors.rollouts.wait(done, "weight sync", step) if done else []
        return max((x for x in loaded if isinstance(x, float)), default=0.0)

    # -- evaluation and checkpoints ----------------------------------------------------------
    def evaluate(self, step: int) -> dict[str, float]:
        """Every ``eval.benchmarks`` entry on the engines holding the step's weights; the
        samples go to ``eval/samples_step_N.jsonl`` and, through ``log_artifact``, to the
        tracker."""
        if not self.eval_sets:
            return {}
        actors = self.actors
        settings = eval_sampling(self.cfg.eval, self.cfg.train.seed)
        path = self.output_dir / "eval" / f"samples_step_{step:06d}.jsonl"
        path.unlink(missing_ok=True)  # a resumed run re-evaluates this step

        def generate(prompts: list[list[int]], s: SamplingSettings) -> list[list[Any]]:
            return actors.rollouts.generate_now(prompts, s, "evaluating", step)

        def grade(rule: str, problems: list[Any], texts: list[list[str]]) -> Any:
            return actors.scorer.grade(rule, problems, texts, step)

        metrics = run_evaluation(self.eval_sets, settings, generate, grade, samples_path=path,
                                 extra={"step": step})
        if path.exists():  # a trial never fails after its training for a file it did not write
            self.log_artifact(path, "eval")
        else:
            logger.warning("step %d: the evaluation wrote no samples (%s); nothing to log",
                           step, path)
        return metrics

    def _checkpoint(self, step: int) -> None:
        tag = checkpoint_tag(step)
        self.actors.learners.save_checkpoint(str(self.checkpoint_dir), tag, step)
        # what seedgrpo-eval needs to rebuild the model from this directory alone (without the
        # tracking password: it is not needed there, and files outlive a rotated secret)
        write_experiment(self.checkpoint_dir, redact_config(self.cfg.model_dump(mode="json")))
        if self._next is not None:  # generated ahead: the resumed trial must learn from it
            nxt = self._next
            groups = [g for shard in self.actors.rollouts.wait(
                nxt.shards, "keeping the next batch", step) for g in shard]
            meta = self.actors.rollouts.wait(nxt.meta, "keeping the next batch", step)
            scored = self.actors.scorer.wait([nxt.scored], "keeping the next batch", step)[0]
            write_pending(pending_path(self.checkpoint_dir, step), step=nxt.step,
                          prompts=nxt.prompts, groups=groups, meta=meta, scored=scored)
        saved = write_trainer_state(self.checkpoint_dir,
                                    TrainerState(step, self.sampler.state_dict()))
        prune_checkpoints(self.checkpoint_dir, self.cfg.train.keep_checkpoints)
        space = next_checkpoint_space_warning(self.checkpoint_dir, saved,
                                              self.cfg.train.keep_checkpoints)
        if space is not None:
            logger.warning("step %d: %s", step, space)
        if self.groups_path.exists():
            self.log_artifact(self.groups_path, "train")

    def _resume(self) -> int:
        latest = read_latest(self.checkpoint_dir)
        if latest is None:
            return 0
        tag, state = latest
        self.actors.learners.load_checkpoint(str(self.checkpoint_dir), tag)
        self.sampler.load_state_dict(state.sampler)
        truncate_group_rows(self.groups_path, state.step)  # the steps after it are redone
        # the engines start from the checkpoint's weights, not the base model
        self._push_weights(state.step)
        self._settle_pushes()
        pending = pending_path(self.checkpoint_dir, state.step)
        if pending.exists():
            data = read_pending(pending)
            self._next = StepBatch(data["step"], data["prompts"], [ray.put(data["groups"])],
                                   [ray.put(m) for m in data["meta"]],
                                   scored=ray.put(ScoredBatch.from_json(data["scored"])),
                                   submitted_at=time.monotonic())
        logger.info("resumed from %s (step %d)", tag, state.step)
        return state.step

    # -- the loop -----------------------------------------------------------------------------
    def run(self, *, keep_actors: bool = False) -> dict[str, float]:
        """Train to ``train.steps``; returns the last step's metrics (with the final eval)."""
        metrics: dict[str, float] = {}
        try:
            for step, metrics in self.steps():
                self.report(step, metrics)
        except BaseException:  # a failed step, or a report that raised (an interrupt)
            self.shutdown()
            raise
        if not keep_actors:
            self.shutdown()
        return metrics

    def steps(self) -> Iterator[tuple[int, dict[str, float]]]:
        """Acquire the actors, resume, then yield ``(step, metrics)`` for every step (and the
        evaluation before training as step 0). On an error the actors are shut down; at the
        end they stay in ``self.actors``."""
        cfg = self.cfg
        t0 = time.monotonic()
        model_dir = resolve_model_dir(cfg.model)
        self._prepare_data(model_dir)
        self.actors, self.reused_actors = acquire(self.actors, cfg, model_dir,
                                                  self.engine_kind)
        try:
            start = self._resume()
            self.startup_s = time.monotonic() - t0
            if start == 0 and cfg.eval.before_training and self.eval_sets:
                yield 0, self.evaluate(0)
            for step in range(start + 1, cfg.train.steps + 1):
                yield step, self._step(step)
            if start >= cfg.train.steps:  # resumed a finished run: evaluate what it left (no
                # metrics without benchmarks: the step is reported, so a caller sees the end)
                yield cfg.train.steps, self.evaluate(cfg.train.steps)
            self._settle_pushes()
        except BaseException:
            self.shutdown()
            raise

    def shutdown(self) -> None:
        """Stop this trial's actors (and free its placement group when it made one)."""
        if self.actors is not None:
            self.actors.shutdown()
            self.actors = None

    def _step(self, step: int) -> dict[str, float]:
        cfg, clock = self.cfg, _Clock()
        batch = self._take(step)
        meta = self.actors.rollouts.wait(batch.meta, "generating", step)
        load_s = self._settle_pushes(step, block=False)
        # the learner's updates so far, minus the version of the weights that generated it
        staleness = (step - 1) - min(m["version"] for m in meta)
        if cfg.rollout.max_staleness and step < cfg.train.steps:
            self._generate_ahead(step + 1)  # on the engines, while the learners learn
        probe = self._diagnose(batch)  # before the update: the probe measures pi_old
        scored, stats = self._learn(batch, staleness > 0, clock)
        diagnostics = probe.collect(scored) if probe is not None else {}  # adds to the rows
        evaluating = bool(cfg.eval.every_steps and step % cfg.eval.every_steps == 0) or (
            step == cfg.train.steps)
        if step % cfg.rollout.sync_every_steps == 0 or step == cfg.train.steps or evaluating:
            self._push_weights(step)  # the engines load it after the generation in flight
        clock.lap("time/sync_s")
        append_group_rows(self.groups_path, step,
                          with_prompt_ids(scored.rows, [p.id for p in batch.prompts]))
        generate_s = max(m["seconds"] for m in meta)
        metrics = {**scored.metrics, **learner_metrics(stats), **diagnostics, **clock.laps,
                   "train/staleness": float(staleness), "time/generate_s": generate_s,
                   "time/weight_load_s": load_s,
                   "time/learn_rank_s": max(s["seconds"] for s in stats),
                   "throughput/tokens_per_s": sum(m["tokens"] for m in meta)
                   / max(1e-9, generate_s)}
        if evaluating:
            metrics.update(self.evaluate(step))
            clock.lap("time/eval_s", into=metrics)
        if (cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0) or (
                step == cfg.train.steps):
            self._checkpoint(step)
            clock.lap("time/checkpoint_s", into=metrics)
        metrics["time/step_s"] = clock.total()
        return metrics

    def _generate_ahead(self, step: int) -> None:
        """Submit step ``step``'s generation now; GCPO on policy embeddings scores it after
        this step's update (its embeddings come from the learners). With dynamic sampling
        this is the step's first round only (``_draw_until_signal`` draws the others)."""
        self._next = self._submit(step, score=not self._learner_embeddings)

    def _learn(self, batch: StepBatch, stale: bool, clock: _Clock
               ) -> tuple[ScoredBatch, list[dict[str, float]]]:
        """One update on ``batch``: the ranks start as soon as its scores exist."""
        actors = self.actors
        train = actors.learners.call("train", batch.prompt_ids, batch.shards, batch.scored,
                                     stale)
        if self._next is not None and self._next.scored is None:
            self._score(self._next)  # GCPO: embedded by the learners after this update
        scored = actors.scorer.wait([batch.scored], "scoring", batch.step)[0]
        clock.lap("time/rollout_wait_s")  # generating and scoring, as far as they were waited
        stats = actors.learners.wait(train, "learning", batch.step)
        clock.lap("time/learn_s")
        return scored, stats


class _Clock:
    """Wall-clock laps of one step, named as the metrics they become."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.laps: dict[str, float] = {}

    def lap(self, name: str, *, into: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        (self.laps if into is None else into)[name] = now - self.last
        self.last = now

    def total(self) -> float:
        return time.monotonic() - self.start
