"""One training trial on Ray: generate, score, learn, sync, evaluate, checkpoint, report.

A straight-line loop (nanoGPT's ``train.py`` is the model). Actors are placed into one placement
group built from the trial's own config (``seedgrpo.config.resources``): bundle 0 is the driver
(Tune's trainable, or the ``seedgrpo-train`` process), then the scorer, the rollout workers and
the learner ranks. Every remote wait has a timeout that names the phase and the step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from seedgrpo.config.resources import trial_bundles
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.data import DataError, PromptSampler, build_pools, render_prompt
from seedgrpo.evaluation import (
    Benchmark,
    BenchmarkNotFound,
    EvalProblem,
    GoldAnswer,
    PreparedBenchmark,
    eval_sampling,
    load_benchmark,
    prepare_benchmark,
    run_evaluation,
)
from seedgrpo.learner.batch import TrainSample
from seedgrpo.models import load_tokenizer, resolve_model_dir
from seedgrpo.rollout.factory import EngineUnavailable, choose_engine
from seedgrpo.rollout.types import SamplingSettings
from seedgrpo.runtime.actors import LearnerActor, RolloutActor, ScorerActor
from seedgrpo.runtime.checkpoint import (
    TrainerState,
    checkpoint_tag,
    prune_checkpoints,
    read_latest,
    write_experiment,
    write_trainer_state,
)
from seedgrpo.runtime.metrics import (
    GROUPS_FILE,
    append_group_rows,
    train_metrics,
    truncate_group_rows,
)
from seedgrpo.runtime.sync import WeightSyncer
from seedgrpo.runtime.waiting import TrialError, wait_for

__all__ = ["TrialActors", "TrialError", "TrialRunner", "check_runtime_support",
           "resolve_engine"]

logger = logging.getLogger(__name__)

Reporter = Callable[[int, dict[str, float]], None]
ArtifactLogger = Callable[[Path, str], None]  # (file, artifact directory)
_SEED_STRIDE = 1_000_003  # sampling seed of step s: train.seed * stride + s


def check_runtime_support(cfg: ExperimentConfig) -> None:
    """Refuse, before any actor starts, what this runtime cannot run yet."""
    gcpo = cfg.algorithm.gcpo
    if cfg.algorithm.uncertainty == "gcpo" and gcpo.embedding != "policy":
        raise TrialError(f"algorithm.gcpo.embedding '{gcpo.embedding}' needs a sentence "
                         "encoder, which the runtime does not load yet; use 'policy' (the "
                         "policy's own mean-pooled hidden states)")


def resolve_engine(cfg: ExperimentConfig) -> str:
    """``rollout.engine`` resolved (``auto`` -> vllm when it imports, else hf)."""
    try:
        return choose_engine(cfg.rollout.engine)
    except EngineUnavailable as err:
        raise TrialError(str(err)) from None


def _shares(samples: list[TrainSample], ranks: int) -> list[list[TrainSample]]:
    """Each learner rank's contiguous, equal share (a rank embeds what it will learn from)."""
    per_rank = len(samples) // ranks
    return [samples[i * per_rank:(i + 1) * per_rank] for i in range(ranks)]


@dataclass
class TrialActors:
    """The actors of one trial and the placement group that holds them."""

    pg: PlacementGroup
    scorer: Any
    workers: list[Any]
    learners: list[Any]
    all: list[Any] = field(default_factory=list)
    owns_pg: bool = True  # False under Tune: the trial's group is Tune's to remove

    def shutdown(self) -> None:
        for actor in self.all:
            ray.kill(actor)
        if self.owns_pg:
            remove_placement_group(self.pg)


class TrialRunner:
    """Runs one trial's config to the end (or from its last checkpoint)."""

    def __init__(self, cfg: ExperimentConfig, output_dir: str | Path, *,
                 report: Reporter | None = None,
                 log_artifact: ArtifactLogger | None = None) -> None:
        check_runtime_support(cfg)
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.report = report or (lambda step, metrics: None)
        self.log_artifact = log_artifact or (lambda path, where: None)
        self.groups_path = self.output_dir / "train" / GROUPS_FILE
        self.timeout_s = cfg.learner.timeout_s
        self.engine_kind = resolve_engine(cfg)
        self.actors: TrialActors | None = None  # while run() is going

    # -- set-up -------------------------------------------------------------------------------
    def _prepare_data(self, model_dir: Path) -> None:
        cfg = self.cfg
        tokenizer = load_tokenizer(model_dir)
        self.pad_id = tokenizer.pad_token_id
        pools = build_pools(cfg.data, seed=cfg.train.seed)

        def encode(problems, new_tokens: int):
            texts = [render_prompt(p, cfg.data.template, tokenizer, pools.shots) for p in problems]
            ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            budget = cfg.model.max_seq_len - new_tokens
            kept = [(p, i) for p, i in zip(problems, ids, strict=True) if len(i) <= budget]
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
            problems = [EvalProblem(p.id, p.problem, GoldAnswer(p.answer))
                        for p in pools.heldout[: cfg.eval.limits.get(name, cfg.eval.limit)]]
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

    def start_actors(self, model_dir: Path) -> TrialActors:
        cfg = self.cfg
        bundles = trial_bundles(cfg)
        pg = get_current_placement_group()
        owned = pg is None or len(pg.bundle_specs) != len(bundles)
        if owned:  # seedgrpo-train; under Tune the trial's group exists (never nest one)
            pg = placement_group([b.resources for b in bundles],
                                 strategy=cfg.resources.placement_strategy)
            if not pg.wait(self.timeout_s):
                remove_placement_group(pg)
                raise TrialError(f"the cluster cannot provide this trial's resources "
                                 f"({[b.resources for b in bundles]}) within "
                                 f"{self.timeout_s:.0f} s")
        index = {role: [i for i, b in enumerate(bundles) if b.role == role]
                 for role in ("scorer", "rollout_worker", "learner_rank")}

        def place(i: int) -> dict[str, Any]:
            res = bundles[i].resources
            custom = {k: v for k, v in res.items() if k not in ("CPU", "GPU")}
            return {"num_cpus": res["CPU"], "num_gpus": res.get("GPU", 0.0),
                    "resources": custom, "scheduling_strategy":
                    PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)}

        config = cfg.model_dump(mode="json")
        scorer = ScorerActor.options(**place(index["scorer"][0])).remote(config)
        workers = [RolloutActor.options(**place(i)).remote(config, str(model_dir),
                                                            self.engine_kind)
                   for i in index["rollout_worker"]]
        ranks = index["learner_rank"]
        learners = [LearnerActor.options(**place(i)).remote(config, str(model_dir), r,
                                                             len(ranks))
                    for r, i in enumerate(ranks)]
        actors = TrialActors(pg, scorer, workers, learners, [scorer, *workers, *learners],
                             owns_pg=owned)
        try:
            host, port = self._wait([learners[0].rendezvous.remote()], "learner rendezvous")[0]
            self._wait([w.ready.remote() for w in workers], "starting the rollout engines")
            self._wait([r.setup.remote(host, port) for r in learners], "starting DeepSpeed ranks")
        except BaseException:
            actors.shutdown()  # under Tune, Ray outlives the trial: leave nothing behind
            raise
        return actors

    def _wait(self, refs: list[Any], phase: str, step: int | None = None) -> list[Any]:
        return wait_for(refs, phase, timeout_s=self.timeout_s, step=step)

    # -- one step -----------------------------------------------------------------------------
    def _generate(self, actors: TrialActors, prompt_ids: list[list[int]],
                  settings: SamplingSettings, step: int) -> list[list[Any]]:
        n = len(actors.workers)
        shards = [prompt_ids[i::n] for i in range(n)]  # round-robin keeps shard sizes equal
        refs = [w.generate.remote(s, settings) for w, s in zip(actors.workers, shards,
                                                                strict=True) if s]
        results = self._wait(refs, "generating", step)
        groups: list[list[Any]] = [[] for _ in prompt_ids]
        for w, shard_groups in enumerate(results):
            for j, g in enumerate(shard_groups):
                groups[w + j * n] = g
        return groups

    def _embed(self, actors: TrialActors, batch: list[tuple[list[int], Any]], step: int
               ) -> list[list[list[float]]]:
        """GCPO: each response's embedding under the current policy, from the learner ranks
        (each embeds the share it will learn from), regrouped per prompt."""
        samples = [TrainSample(prompt, c.token_ids, 0.0, c.logprobs)
                   for prompt, group in batch for c in group]
        refs = [r.embed.remote(share)
                for r, share in zip(actors.learners, _shares(samples, len(actors.learners)),
                                    strict=True)]
        rows = [row for share in self._wait(refs, "embedding responses (GCPO)", step)
                for row in share]
        g = self.cfg.algorithm.group_size
        return [rows[i * g:(i + 1) * g] for i in range(len(batch))]

    def _learn(self, actors: TrialActors, batch: list[tuple[list[int], Any]], scores: list[Any],
               step: int) -> list[dict[str, float]]:
        samples = [TrainSample(prompt, c.token_ids, adv, c.logprobs)
                   for (prompt, group), score in zip(batch, scores, strict=True)
                   for c, adv in zip(group, score.advantages, strict=True)]
        tokens = sum(len(s.response_ids) for s in samples)
        refs = [r.train_step.remote(share, tokens, len(samples))
                for r, share in zip(actors.learners, _shares(samples, len(actors.learners)),
                                    strict=True)]
        return self._wait(refs, "learning", step)

    def evaluate(self, actors: TrialActors, step: int) -> dict[str, float]:
        """Every ``eval.benchmarks`` entry (ARCHITECTURE.md metric names); the samples go to
        ``eval/samples_step_N.jsonl`` and, through ``log_artifact``, to the tracker."""
        settings = eval_sampling(self.cfg.eval, self.cfg.train.seed)
        path = self.output_dir / "eval" / f"samples_step_{step:06d}.jsonl"
        path.unlink(missing_ok=True)  # a resumed run re-evaluates this step

        def generate(prompts: list[list[int]], s: Any) -> list[list[Any]]:
            return self._generate(actors, prompts, s, step)

        def grade(rule: str, problems: list[Any], texts: list[list[str]]) -> Any:
            return self._wait([actors.scorer.grade.remote(rule, problems, texts)],
                              "evaluating", step)[0]

        metrics = run_evaluation(self.eval_sets, settings, generate, grade, samples_path=path,
                                 extra={"step": step})
        self.log_artifact(path, "eval")
        return metrics

    def _checkpoint(self, actors: TrialActors, step: int) -> None:
        tag = checkpoint_tag(step)
        self._wait([r.save_checkpoint.remote(str(self.checkpoint_dir), tag, {"step": step})
                    for r in actors.learners], "checkpointing", step)
        # what seedgrpo-eval needs to rebuild the model from this directory alone
        write_experiment(self.checkpoint_dir, self.cfg.model_dump(mode="json"))
        write_trainer_state(self.checkpoint_dir, TrainerState(step, self.sampler.state_dict()))
        prune_checkpoints(self.checkpoint_dir, self.cfg.train.keep_checkpoints)
        if self.groups_path.exists():
            self.log_artifact(self.groups_path, "train")

    def _resume(self, actors: TrialActors, syncer: WeightSyncer) -> int:
        latest = read_latest(self.checkpoint_dir)
        if latest is None:
            return 0
        tag, state = latest
        self._wait([r.load_checkpoint.remote(str(self.checkpoint_dir), tag)
                    for r in actors.learners], "loading the checkpoint")
        self.sampler.load_state_dict(state.sampler)
        truncate_group_rows(self.groups_path, state.step)  # the steps after it are redone
        syncer.sync()  # the engines start from the checkpoint's weights, not the base model
        logger.info("resumed from %s (step %d)", tag, state.step)
        return state.step

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        """Train to ``train.steps``; returns the last step's metrics (with the final eval)."""
        cfg = self.cfg
        model_dir = resolve_model_dir(cfg.model)
        self._prepare_data(model_dir)
        actors = self.start_actors(model_dir)
        self.actors = actors
        try:
            backend = cfg.learner.backend
            if backend == "auto":  # the same rule the ranks use: GPUs -> nccl, else gloo
                backend = "nccl" if cfg.resources.learner_rank.gpus > 0 else "gloo"
            syncer = WeightSyncer(cfg.rollout.weight_sync, actors.learners, actors.workers,
                                  backend=backend, timeout_s=self.timeout_s)
            start = self._resume(actors, syncer)
            metrics: dict[str, float] = {}
            if start == 0 and cfg.eval.before_training:
                self.report(0, self.evaluate(actors, 0))
            for step in range(start + 1, cfg.train.steps + 1):
                metrics = self._step(actors, syncer, step)
                self.report(step, metrics)
            if start >= cfg.train.steps:  # resumed a finished run: evaluate what it left
                metrics = self.evaluate(actors, cfg.train.steps)
                self.report(cfg.train.steps, metrics)
            return metrics
        finally:
            actors.shutdown()

    def _step(self, actors: TrialActors, syncer: WeightSyncer, step: int) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.monotonic()
        batch_problems = [self.train[i] for i in self.sampler.next_indices(
            cfg.train.prompts_per_step)]
        settings = SamplingSettings(
            n=cfg.algorithm.group_size, max_new_tokens=cfg.rollout.max_new_tokens,
            temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            seed=cfg.train.seed * _SEED_STRIDE + step)
        groups = self._generate(actors, [ids for _, ids in batch_problems], settings, step)
        t1 = time.monotonic()
        golds = [p.answer for p, _ in batch_problems]
        pairs = [(ids, g) for (_, ids), g in zip(batch_problems, groups, strict=True)]
        embeddings = (self._embed(actors, pairs, step)
                      if cfg.algorithm.uncertainty == "gcpo" else None)
        scores, verify = self._wait([actors.scorer.score.remote(groups, golds, embeddings),
                                     actors.scorer.verifier_counters.remote()], "scoring", step)
        t2 = time.monotonic()
        stats = self._learn(actors, pairs, scores, step)
        t3 = time.monotonic()
        if step % cfg.rollout.sync_every_steps == 0 or step == cfg.train.steps:
            syncer.sync()
        t4 = time.monotonic()
        metrics = train_metrics(groups, scores, stats)
        append_group_rows(self.groups_path, step, scores)
        # rewards that failed closed, cumulative: a rising count means answers the grader
        # could not judge (timeouts, parse errors), not wrong answers
        metrics.update({f"reward/verify_{k}_total": float(verify[k])
                        for k in ("errors", "timeouts", "refused")})
        tokens = sum(len(c.token_ids) for g in groups for c in g)
        metrics.update({"time/generate_s": t1 - t0, "time/score_s": t2 - t1,
                        "time/learn_s": t3 - t2, "time/sync_s": t4 - t3,
                        "throughput/tokens_per_s": tokens / max(1e-9, t1 - t0)})
        every = cfg.eval.every_steps
        if (every and step % every == 0) or step == cfg.train.steps:
            metrics.update(self.evaluate(actors, step))
        if (cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0) or (
                step == cfg.train.steps):
            self._checkpoint(actors, step)
        metrics["time/step_s"] = time.monotonic() - t0
        return metrics
