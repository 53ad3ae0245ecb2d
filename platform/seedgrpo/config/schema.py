"""The experiment file: one run's sections plus resources, tracking, search space and Tune.

An experiment file says everything about a sweep (docs/ARCHITECTURE.md, "Conventions"). The search
space is stored resolved (files read, inline mappings merged) as ``dotted.path -> Domain``;
``seedgrpo.config.loading`` builds it and ``seedgrpo.config.search_space`` checks it against
this schema and expands it into trials.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from seedgrpo.config.errors import short_repr
from seedgrpo.config.renamed_keys import rename_keys
from seedgrpo.config.sections import (
    AlgorithmConfig,
    DataConfig,
    DiagnosticsConfig,
    EvalConfig,
    LearnerConfig,
    ModelConfig,
    RolloutConfig,
    Section,
    TrainConfig,
)

__all__ = [
    "DOMAIN_KINDS",
    "Domain",
    "ResourceSpec",
    "ResourcesConfig",
    "TrackingConfig",
    "MLFLOW_URI_ENV",
    "OUTPUT_DIR_ENV",
    "TuneConfig",
    "ExperimentConfig",
]

DOMAIN_KINDS = ("grid", "choice", "uniform", "loguniform", "randint")
MAX_DOMAIN_VALUES = 1_000  # values of one grid or choice; a sweep runs at most 10,000 trials
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RAY_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
_METRIC = re.compile(r"^(train|eval|time|throughput|diag)/[A-Za-z0-9_./-]+$")


def _valid_mini_batches(batch: int, ranks: int) -> str:
    """Some valid train.mini_batch_size values, for the error message: multiples of the rank
    count that divide the step's responses."""
    valid = [m for m in range(ranks, batch + 1, ranks) if batch % m == 0]
    return ", ".join(map(str, valid[:6])) + (", ..." if len(valid) > 6 else "")


class Domain(Section):
    """One search-space parameter: exactly one of the five kinds, as in Ray Tune.

    ``grid`` values are all tried; ``choice``, ``uniform``, ``loguniform`` and ``randint`` are
    sampled (``randint`` includes lo and excludes hi, as Ray Tune).
    """

    kind: Literal["grid", "choice", "uniform", "loguniform", "randint"]
    values: list[Any] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_file_form(cls, data: Any) -> Any:
        """Accept the file form ``{grid: [...]}`` (and the internal ``{kind, values}``)."""
        if isinstance(data, Domain) or (isinstance(data, dict) and set(data) == {"kind",
                                                                                 "values"}):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping like {{grid: [0.0, 0.5, 1.0]}}, got "
                             f"{short_repr(data)}")
        if len(data) != 1:
            raise ValueError(
                f"a parameter takes exactly one of {', '.join(DOMAIN_KINDS)}; "
                f"got {short_repr(', '.join(map(str, data)))[1:-1] or 'nothing'}"
            )
        ((kind, values),) = data.items()
        if kind not in DOMAIN_KINDS:
            raise ValueError(f"{short_repr(kind)} is not one of {', '.join(DOMAIN_KINDS)}")
        if not isinstance(values, list):
            raise ValueError(
                f"{kind} takes a list, e.g. {{{kind}: [0.1, 0.5]}}; got {short_repr(values)}"
            )
        if len(values) > MAX_DOMAIN_VALUES:
            raise ValueError(f"{kind} lists {len(values):,} values; at most "
                             f"{MAX_DOMAIN_VALUES:,} per parameter")
        return {"kind": kind, "values": values}

    @model_serializer(mode="plain")
    def _to_file_form(self) -> dict[str, list[Any]]:
        return {self.kind: list(self.values)}

    @model_validator(mode="after")
    def _check_bounds(self) -> Domain:
        if self.kind in ("grid", "choice"):
            return self
        if len(self.values) != 2:
            raise ValueError(f"{self.kind} takes [lo, hi], got {len(self.values)} value(s)")
        lo, hi = self.values
        numbers = (int,) if self.kind == "randint" else (int, float)
        for v in (lo, hi):
            kind = "integers" if self.kind == "randint" else "finite numbers"
            if isinstance(v, bool) or not isinstance(v, numbers):
                raise ValueError(f"{self.kind} bounds must be {kind}, got {short_repr(v)}")
            try:
                finite = math.isfinite(float(v))
            except OverflowError:  # a 400-digit YAML integer
                finite = False
            if not finite:
                raise ValueError(f"{self.kind} bounds must be {kind} of sensible size, got "
                                 f"{str(v)[:20]}")
        if not lo < hi:
            raise ValueError(f"{self.kind} needs lo < hi, got [{lo}, {hi}]")
        if self.kind == "loguniform" and lo <= 0:
            raise ValueError(f"loguniform needs lo > 0, got {lo}")
        return self

    @property
    def sampled(self) -> bool:
        """True for kinds that are drawn at random (everything but ``grid``)."""
        return self.kind != "grid"

    def describe(self) -> str:
        """Short text for tables: ``grid[0, 0.5, 1]`` or ``loguniform(0.01, 1)``."""
        inner = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.values)
        if self.kind in ("grid", "choice"):
            return f"{self.kind}[{inner}]"
        return f"{self.kind}({inner})"


class ResourceSpec(Section):
    cpus: float = Field(1.0, ge=0.0, description="Logical CPUs reserved (fractions allowed).")
    gpus: float = Field(0.0, ge=0.0, description="GPUs reserved (fractions share one GPU).")
    custom: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources, e.g. a node-type marker that drives the autoscaler; "
        "amounts >= 0, names other than Ray's own (CPU, GPU, memory, object_store_memory).",
    )

    @field_validator("custom")
    @classmethod
    def _sensible_custom(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if name in _RAY_BUILTIN_RESOURCES:
                raise ValueError(f"custom resource '{name}' is one of Ray's own; reserve it "
                                 "with cpus/gpus (or leave it to Ray)")
            if not name.strip() or len(name) > 100:
                raise ValueError(f"custom resource name {short_repr(name)} must be a short, "
                                 "non-empty name")
            if amount < 0:
                raise ValueError(f"custom resource '{name}' = {amount} must be >= 0")
        return value


class ResourcesConfig(Section):
    """What a trial's actors reserve (all as one placement group) and how long the trial waits
    on them."""

    driver: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(cpus=0.25),
        description="The trial driver (Tune's function trainable): bundle 0 of the placement "
        "group.",
    )
    scorer: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(cpus=0.25),
        description="The scoring actor (math-verify, semantic entropy, advantages).",
    )
    rollout_worker: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(cpus=0.5),
        description="Each rollout worker (one engine); rollout.num_workers of them.",
    )
    learner_rank: ResourceSpec = Field(
        default_factory=lambda: ResourceSpec(cpus=0.5),
        description="Each DeepSpeed learner rank; learner.num_ranks of them.",
    )
    placement_strategy: Literal["PACK", "STRICT_PACK", "SPREAD"] = Field(
        "PACK",
        description="How Ray places a trial's bundles. PACK: on as few nodes as fit, split "
        "over several when no node has room for all. STRICT_PACK: all on one node (NVLink "
        "between the learner ranks; the autoscaler adds one whole node per pending trial), "
        "so a trial larger than every node type never starts. SPREAD: over as many nodes as "
        "possible.",
    )
    call_timeout_s: float = Field(
        600.0,
        gt=0.0,
        description="Every wait on a trial's actors (placement, generation, scoring, a learner "
        "step, evaluation, a weight sync) longer than this many seconds fails the trial "
        "(formerly learner.timeout_s).",
    )


MLFLOW_URI_ENV = "MLFLOW_TRACKING_URI"
OUTPUT_DIR_ENV = "SEEDGRPO_OUTPUT_DIR"
_DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"


def _env_default(name: str, fallback: str) -> Callable[[], str]:
    """A default read from the environment when a config is built: a cluster's images set
    ``MLFLOW_TRACKING_URI`` and ``SEEDGRPO_OUTPUT_DIR`` on every node, so one experiment file
    runs on a laptop and on a cluster unchanged. A value in the file or a --set still wins."""
    return lambda: os.environ.get(name) or fallback


class TrackingConfig(Section):
    mlflow_uri: str | None = Field(
        default_factory=_env_default(MLFLOW_URI_ENV, _DEFAULT_MLFLOW_URI),
        description="MLflow tracking URI; unset = $MLFLOW_TRACKING_URI, else the embedded "
        "default, a SQLite file in the working directory. Any MLflow server (http://...) "
        "works; on a multi-node cluster it must be a server every node reaches; null = no "
        "tracking.",
    )
    experiment_name: str | None = Field(
        None,
        description="MLflow experiment, also a directory under output_dir: letters, digits, "
        "'.', '_' and '-', starting with a letter or digit, at most 100 characters; unset = "
        "the experiment file's name without .yaml (other characters become '_').",
    )
    output_dir: str = Field(
        default_factory=_env_default(OUTPUT_DIR_ENV, "runs"),
        description="Directory for checkpoints, Tune state and reports: "
        "<output_dir>/<experiment>/<sweep id>/ per sweep; unset = $SEEDGRPO_OUTPUT_DIR, else "
        "runs. On a multi-node cluster, a directory every node shares (NFS, EFS, or a bucket "
        "mounted with s3fs/gcsfuse), checked from every node. Relative (to the working "
        "directory) or absolute (e.g. /shared/runs); no '..' components and no control "
        "characters.",
    )

    @field_validator("experiment_name")
    @classmethod
    def _a_safe_name(cls, value: str | None) -> str | None:
        if value is not None and not _SAFE_NAME.match(value):
            raise ValueError(
                f"= {short_repr(value)} is not a safe name (it becomes a "
                "directory and an MLflow experiment): use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 100 characters, e.g. alpha_grid"
            )
        return value

    @field_validator("output_dir")
    @classmethod
    def _a_filesystem_path(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(
                f"= {short_repr(value)} is a URI; checkpoints, Tune state and reports are "
                "written to a filesystem path: give a directory every node shares (NFS, EFS, "
                "Filestore) or mount the bucket (s3fs, gcsfuse) and give the mount's path"
            )
        if not value.strip():
            raise ValueError("is empty; give a directory, e.g. runs or /mnt/shared/runs")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"= {short_repr(value)} holds a control character "
                             "(NUL, newline, ...); give a plain directory path")
        if len(value) > 1024:
            raise ValueError(f"is {len(value):,} characters long; give a "
                             "directory path of at most 1024")
        if ".." in re.split(r"[/\\]", value):
            raise ValueError(f"= {short_repr(value)} contains '..'; give the "
                             "directory without it, relative to the working directory (runs) "
                             "or absolute (/shared/runs)")
        return value


class TuneConfig(Section):
    search_alg: Literal["grid", "random", "optuna"] = Field(
        "grid",
        description="`grid`: every grid combination (sampled kinds drawn per trial); `random`: "
        "num_samples seeded draws; `optuna`: TPE over sampled kinds (no grid).",
    )
    scheduler: Literal["fifo", "asha"] = Field(
        "fifo", description="`fifo` runs every trial to the end; `asha` stops weak ones early."
    )
    num_samples: int = Field(
        1, ge=1, description="Draws of the sampled parameters (per grid point for grid/random)."
    )
    seeds: int = Field(
        1,
        ge=1,
        description="Repeats of each configuration with train.seed, +1, ...: noise vs effect.",
    )
    seed: int = Field(0, ge=0, description="Seed of the search itself (random draws, TPE).")
    max_concurrent_trials: int = Field(
        0, ge=0, description="Trials running at once; 0 = as many as the resources allow."
    )
    metric: str = Field(
        "eval/avg/pass_at_1",
        description="Metric that ranks trials, drives ASHA and Optuna (see the metric names).",
    )
    mode: Literal["max", "min"] = Field("max", description="Whether higher metric is better.")
    grace_period: int = Field(
        2, ge=1, description="ASHA: steps a trial runs before it may be stopped; the rungs are "
        "grace_period x reduction_factor^k steps (put them on evaluation steps)."
    )
    reduction_factor: int = Field(2, ge=2, description="ASHA: 1/reduction_factor trials go on.")
    max_failures: int = Field(
        1, ge=0, description="Retries of a failed trial, from its last checkpoint, in the same "
        "MLflow run."
    )
    reuse_actors: bool = Field(
        True,
        description="Keep a finished trial's rollout engines and learner ranks for the next "
        "trial with the same model and resource shape: weights, optimizer, scheduler and RNGs "
        "are reset instead of restarting vLLM and DeepSpeed (seconds instead of a minute or "
        "more). Trials that cannot share them start cold.",
    )

    @model_validator(mode="after")
    def _metric_name(self) -> TuneConfig:
        if not _METRIC.match(self.metric):
            raise ValueError(
                f"tune.metric '{self.metric}' is not a metric name; use e.g. "
                "eval/avg/pass_at_1, eval/math500/pass_at_1 or train/reward_mean"
            )
        return self


class ExperimentConfig(Section):
    """Everything one experiment file says. Unknown keys anywhere are errors."""

    plugins: list[str] = Field(
        default_factory=list,
        description="Python modules imported before the rest of the file is validated, so "
        "that the uncertainty sources, modulation functions and rewards they register "
        "(seedgrpo.algorithms.register_uncertainty / register_modulation, "
        "seedgrpo.rewards.register_reward) are valid names here. Looked up on sys.path, then "
        "in the experiment file's directory, which the CLIs also put on their Ray workers' "
        "PYTHONPATH; e.g. [plugins.reward_variance] in experiments/uncertainty_sources.yaml "
        "(experiments/plugins/reward_variance.py).",
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="The policy model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training prompts.")
    algorithm: AlgorithmConfig = Field(
        default_factory=AlgorithmConfig, description="Advantages, modulation and loss."
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="The optimisation loop.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Generation.")
    learner: LearnerConfig = Field(default_factory=LearnerConfig, description="DeepSpeed ranks.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Benchmarks during training.")
    diagnostics: DiagnosticsConfig = Field(
        default_factory=DiagnosticsConfig, description="Extra measurements (off by default)."
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig,
        description="What each actor of a trial reserves, and how long the trial waits on them."
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow.")
    tune: TuneConfig = Field(default_factory=TuneConfig, description="The sweep.")
    search_space: dict[str, Domain] = Field(
        default_factory=dict,
        description="Dotted config path -> {grid | choice | uniform | loguniform | randint: ...}; "
        "in a file, a mapping, a path to a file in search_spaces/, or a list of both.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Old key spellings load everywhere a config is read, not only from experiment files:
        a checkpoint's or a sweep's saved config may predate a rename
        (``seedgrpo.config.renamed_keys``)."""
        return rename_keys(data) if isinstance(data, dict) else data

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any, info: ValidationInfo) -> Any:
        """Import the plug-ins first: the names they register are checked below. The loader
        passes the experiment file's directory as ``plugin_dirs`` in the context."""
        if isinstance(data, dict) and isinstance(data.get("plugins"), list):
            from seedgrpo.config.plugins import import_plugins

            import_plugins(data["plugins"], (info.context or {}).get("plugin_dirs", ()))
        return data

    @model_validator(mode="after")
    def _cross_section_rules(self) -> ExperimentConfig:
        batch = self.train.prompts_per_step * self.algorithm.group_size
        if batch % self.learner.num_ranks:
            raise ValueError(
                f"train.prompts_per_step * algorithm.group_size = {batch} responses do not split "
                f"evenly over learner.num_ranks = {self.learner.num_ranks}; change one of them"
            )
        mini = self.train.mini_batch_size
        if mini is not None and (batch % mini or mini % self.learner.num_ranks):
            raise ValueError(
                f"train.mini_batch_size = {mini} must divide train.prompts_per_step * "
                f"algorithm.group_size = {batch} responses and be a multiple of "
                f"learner.num_ranks = {self.learner.num_ranks}; valid values: "
                f"{_valid_mini_batches(batch, self.learner.num_ranks) or 'none (change the ranks)'}"
            )
        bench = self.tune.metric.split("/")
        if bench[0] == "eval" and len(bench) == 3 and bench[1] != "avg":
            if bench[1] not in self.eval.benchmarks:
                raise ValueError(
                    f"tune.metric '{self.tune.metric}' reads benchmark '{bench[1]}', which is not "
                    f"in eval.benchmarks ({', '.join(self.eval.benchmarks)}); a benchmark in "
                    "eval.optional_benchmarks may be missing, so it cannot rank trials"
                )
        return self
