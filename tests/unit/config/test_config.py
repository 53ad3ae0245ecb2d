"""Experiment files: loading, --set overrides, search spaces, trial expansion, resources."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from seedgrpo.config import (
    ConfigError,
    ExperimentConfig,
    describe_resources,
    expand_trials,
    load_experiment,
    total_resources,
    trial_bundles,
)
from seedgrpo.config.plugins import builtin_names, registered_names
from seedgrpo.config.reference import render_reference
from seedgrpo.config.sections import AlgorithmConfig, GcpoConfig
from tests.conftest import REPO_ROOT


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def errors_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_experiment(path, overrides or [])
    return [issue.render() for issue in info.value.issues]


MINIMAL = "train: {seed: 0}\n"  # the smallest file that is not empty: everything else default


# -- defaults and the shipped files ---------------------------------------------------------
def test_a_minimal_file_is_all_defaults(tmp_path: Path) -> None:
    loaded = load_experiment(write(tmp_path, MINIMAL))
    assert loaded.config.algorithm.modulation == "linear"
    assert loaded.config.tracking.experiment_name == "exp"  # from the file name
    assert expand_trials(loaded.config)[0].name == "base"


@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "---\n"])
def test_an_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    (issue,) = errors_of(write(tmp_path, text))
    assert "exp.yaml: is empty; a minimal experiment file is" in issue
    assert "experiments/" in issue


def test_the_default_experiment_name_is_a_safe_name(tmp_path: Path) -> None:
    loaded = load_experiment(write(tmp_path, MINIMAL, "my sweep (v2).yaml"))
    assert loaded.config.tracking.experiment_name == "my_sweep_v2_"


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "experiments").rglob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_experiment_loads_and_expands(path: Path) -> None:
    loaded = load_experiment(path)
    assert expand_trials(loaded.config)


def test_alpha_grid_has_the_none_baseline_once() -> None:
    trials = expand_trials(load_experiment(REPO_ROOT / "experiments/alpha_grid.yaml").config)
    names = [t.name for t in trials]
    assert names == ["none", "linear-a0.1", "linear-a0.5", "linear-a1"]
    assert trials[0].params == {"algorithm.modulation": "none"}  # alpha is ignored by none
    assert [t.config.algorithm.alpha for t in trials[1:]] == [0.1, 0.5, 1.0]


# -- bad input: one issue per problem, with file, line and dotted path -----------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("algorithm:\n  alpha: -1\n", "exp.yaml:2: algorithm.alpha = -1 must be >= 0"),
        ("algorithm:\n  group_size: 1\n", "exp.yaml:2: algorithm.group_size = 1 must be >= 2"),
        ("algorithm:\n  modulation: lineer\n",
         "exp.yaml:2: algorithm.modulation = 'lineer' is not one of 'none', 'linear', 'exp', "
         "'focal' or 'inverse'"),
        ("algorithm:\n  alhpa: 0.5\n",
         "exp.yaml:2: algorithm.alhpa: unknown key (did you mean 'alpha'?); allowed here: "),
        ("train:\n  steps: many\n",
         "exp.yaml:2: train.steps = 'many' has the wrong type: expected a whole number"),
        ("modle:\n  name: x\n", "exp.yaml:1: modle: unknown key (did you mean 'model'?)"),
        ("learner:\n  zero_stage: 4\n", "learner.zero_stage = 4 is not one of 1, 2 or 3"),
        ("rollout:\n  temperature: 0\n", "rollout.temperature = 0 must be > 0"),
        ("data:\n  source: jsonl\n", "data.source 'jsonl' needs data.path"),
        ("model:\n  source: bundled\n  name: gpt2\n", "model.name 'gpt2' is not a bundled model"),
        ("eval:\n  benchmarks: [aime25]\n", "unknown benchmark(s) aime25; choose from: aime24"),
        ("tune:\n  metric: accuracy\n", "tune.metric 'accuracy' is not a metric name"),
        ("tune:\n  metric: eval/aime24/pass_at_1\n",
         "reads benchmark 'aime24', which is not in eval.benchmarks"),
        ("train:\n  prompts_per_step: 3\nalgorithm:\n  group_size: 3\nlearner:\n  num_ranks: 2\n",
         "= 9 responses do not split evenly over learner.num_ranks = 2"),
        ("- 1\n- 2\n", "exp.yaml:1: must be a mapping of sections"),
        ("algorithm: {alpha: [1\n", "exp.yaml:2: YAML syntax error"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    issues = errors_of(write(tmp_path, text))
    assert any(expected in issue for issue in issues), issues


def test_all_problems_reported_together(tmp_path: Path) -> None:
    issues = errors_of(write(tmp_path, "algorithm:\n  alpha: -1\n  group_size: 0\n"))
    assert len(issues) == 2


def test_missing_file_lists_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "", "real.yaml")
    (issue,) = errors_of(tmp_path / "typo.yaml")
    assert "typo.yaml: no such file; files there: real.yaml" in issue


# -- overrides -------------------------------------------------------------------------------
def test_exponent_floats_are_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-6 as a string; every ML config writes learning rates this way
    cfg = load_experiment(write(tmp_path, "train:\n  lr: 1e-6\n"), ["algorithm.alpha=5e-1"]).config
    assert cfg.train.lr == 1e-6 and cfg.algorithm.alpha == 0.5


def test_overrides_are_typed_by_the_schema(tmp_path: Path) -> None:
    cfg = load_experiment(write(tmp_path, MINIMAL), [
        "algorithm.alpha=0.5", "model.source=hf", "model.name=123", "learner.zero_stage=3",
        "eval.benchmarks=aime24,amc23", "train.grad_clip=null", "rollout.engine=hf",
    ]).config
    assert cfg.algorithm.alpha == 0.5
    assert cfg.model.name == "123"  # a text field keeps the text as typed
    assert cfg.learner.zero_stage == 3
    assert cfg.eval.benchmarks == ["aime24", "amc23"]
    assert cfg.train.grad_clip is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("algorithm.alpha=-2", "--set algorithm.alpha=-2: algorithm.alpha = -2 must be >= 0"),
        ("algorithm.alpah=1", "unknown key 'alpah' in algorithm (did you mean 'alpha'?)"),
        ("alpha", "--set expects KEY=VALUE"),
        ("algorithm.alpha.x=1", "algorithm.alpha is a value, not a section"),
        ("algorithm.alpha=[1", "the value is not valid YAML"),
    ],
)
def test_bad_overrides(tmp_path: Path, override: str, expected: str) -> None:
    issues = errors_of(write(tmp_path, MINIMAL), [override])
    assert any(expected in issue for issue in issues), issues


# -- search spaces ---------------------------------------------------------------------------
def test_search_space_files_are_found_above_the_experiment(tmp_path: Path) -> None:
    write(tmp_path, "[project]\n", "pyproject.toml")  # the project root: the lookup stops here
    write(tmp_path, "algorithm.alpha: {grid: [0.0, 1.0]}\n", "search_spaces/a.yaml")
    write(tmp_path, "algorithm.group_size: {grid: [2, 4]}\n", "search_spaces/g.yaml")
    exp = write(tmp_path, "search_space: [search_spaces/a.yaml, search_spaces/g.yaml]\n",
                "experiments/deep/x.yaml")
    trials = expand_trials(load_experiment(exp).config)
    # names hold only what varies: alpha and G here
    assert [t.name for t in trials] == ["a0-G2", "a0-G4", "a1-G2", "a1-G4"]


def test_search_space_files_above_the_project_root_are_not_used(tmp_path: Path,
                                                                monkeypatch) -> None:
    # a file planted in a shared parent (/tmp/search_spaces) must not be picked up
    write(tmp_path, "algorithm.alpha: {grid: [0.0, 1.0]}\n", "search_spaces/a.yaml")
    write(tmp_path, "[project]\n", "project/pyproject.toml")
    exp = write(tmp_path, "search_space: search_spaces/a.yaml\n", "project/experiments/x.yaml")
    monkeypatch.chdir(tmp_path / "project")
    (issue,) = errors_of(exp)
    assert "file 'search_spaces/a.yaml' not found" in issue, issue
    # without pyproject.toml or .git: up to the directory holding experiments/ (a container)
    (tmp_path / "project/pyproject.toml").unlink()
    (issue,) = errors_of(exp)
    assert "not found" in issue, issue
    write(tmp_path, "algorithm.alpha: {grid: [0.0, 1.0]}\n", "project/search_spaces/a.yaml")
    deeper = write(tmp_path, "search_space: search_spaces/a.yaml\n",
                   "project/experiments/paper/x.yaml")
    assert len(expand_trials(load_experiment(deeper).config)) == 2
    # and in a plain directory, that directory alone
    plain = write(tmp_path, "search_space: search_spaces/a.yaml\n", "plain/x.yaml")
    monkeypatch.chdir(tmp_path / "plain")
    (issue,) = errors_of(plain)
    assert "not found" in issue, issue


def test_search_space_override_replaces_a_parameter(tmp_path: Path) -> None:
    exp = write(tmp_path, "search_space:\n  algorithm.alpha: {grid: [0.0, 1.0]}\n")
    trials = expand_trials(load_experiment(exp, ["search_space.algorithm.alpha={grid: [0.3]}"]
                                           ).config)
    assert [t.params for t in trials] == [{"algorithm.alpha": 0.3}]


@pytest.mark.parametrize(
    ("space", "tune", "expected"),
    [
        ("{}", "", "search_space: is empty"),
        ("{algorithm.alpha: {grid: []}}", "", "search_space.algorithm.alpha"),
        ("{algorithm.alpha: {grid: [0.1, -1]}}", "",
         "grid value -1 is invalid: algorithm.alpha = -1 must be >= 0"),
        ("{algorithm.modulation: {choice: [linear, cubic]}}", "",
         "choice value 'cubic' is invalid"),
        ("{algorithm.alpha: {uniform: [1, 0]}}", "", "uniform needs lo < hi"),
        ("{train.lr: {loguniform: [0, 1]}}", "", "loguniform needs lo > 0"),
        ("{algorithm.group_size: {uniform: [2, 8]}}", "", "use randint for whole numbers"),
        ("{algorithm.alpha: {gird: [1]}}", "", "'gird' is not one of grid, choice"),
        ("{algorithm.alpha: {grid: [1], choice: [2]}}", "", "takes exactly one of"),
        ("{algorithm.alfa: {grid: [1]}}", "", "unknown key 'alfa' in algorithm"),
        ("{tune.num_samples: {grid: [1, 2]}}", "", "cannot be swept"),
        ("{algorithm: {grid: [1]}}", "", "is a section, not a value"),
        ("{algorithm.alpha: {grid: [0.1, 0.2]}}", "tune: {search_alg: optuna}",
         "is a grid, but tune.search_alg 'optuna' only samples"),
        ("{algorithm.alpha: {grid: [0.1]}}", "tune: {search_alg: random}",
         "'random' needs at least one sampled parameter"),
        ("{algorithm.alpha: {grid: [0.1]}}", "tune: {num_samples: 3}",
         "would repeat identical trials; use tune.seeds"),
        ("{train.seed: {grid: [1, 2]}}", "tune: {seeds: 2}", "both set the seed"),
        ("{algorithm.alpha: {uniform: [0, 1]}}", "tune: {search_alg: optuna, seeds: 2}",
         "repeated seeds work with grid and random search"),
        ("[missing.yaml]", "", "file 'missing.yaml' not found"),
        ("[{algorithm.alpha: {grid: [1]}}, {algorithm.alpha: {grid: [2]}}]", "",
         "is defined twice"),
    ],
)
def test_bad_search_spaces(tmp_path: Path, space: str, tune: str, expected: str) -> None:
    issues = errors_of(write(tmp_path, f"search_space: {space}\n{tune}\n"))
    assert any(expected in issue for issue in issues), issues


def test_trial_combinations_are_validated_as_a_whole(tmp_path: Path) -> None:
    # 5 prompts x G 5 = 25 responses split over 5 ranks, but not over 2; each value alone is
    # valid against the base config (5 prompts x G 8 = 40 over 5 ranks, or over 2)
    exp = write(tmp_path, "train: {prompts_per_step: 5}\nlearner: {num_ranks: 5}\n"
                          "search_space:\n  algorithm.group_size: {grid: [5, 8]}\n"
                          "  learner.num_ranks: {grid: [5, 2]}\n")
    with pytest.raises(ConfigError, match="trial G5-num_ranks2 of the search space is invalid"):
        expand_trials(load_experiment(exp).config)


# -- expansion -------------------------------------------------------------------------------
def test_grid_times_seeds_order_and_names(tmp_path: Path) -> None:
    exp = write(tmp_path, "tune: {seeds: 2}\ntrain: {seed: 10}\nsearch_space:\n"
                          "  algorithm.group_size: {grid: [4, 8]}\n"
                          "  algorithm.modulation: {grid: [exp, none]}\n")
    trials = expand_trials(load_experiment(exp).config)
    # last parameter fastest, then the seeds; the modulation leads the name, the seed ends it
    assert [t.name for t in trials] == [
        "exp-G4-s10", "exp-G4-s11", "none-G4-s10", "none-G4-s11",
        "exp-G8-s10", "exp-G8-s11", "none-G8-s10", "none-G8-s11",
    ]
    assert [(t.config.algorithm.group_size, t.config.algorithm.modulation, t.config.train.seed)
            for t in trials] == [(4, "exp", 10), (4, "exp", 11), (4, "none", 10), (4, "none", 11),
                                 (8, "exp", 10), (8, "exp", 11), (8, "none", 10), (8, "none", 11)]
    assert [t.index for t in trials] == list(range(8))
    assert len({t.name for t in trials}) == 8


def test_random_search_is_seeded_and_in_range(tmp_path: Path) -> None:
    text = ("tune: {search_alg: random, num_samples: 5, seed: 3}\nsearch_space:\n"
            "  algorithm.alpha: {loguniform: [0.01, 1.0]}\n"
            "  algorithm.group_size: {randint: [2, 5]}\n"
            "  algorithm.modulation: {choice: [linear, exp]}\n"
            "train: {prompts_per_step: 4}\nlearner: {num_ranks: 1}\n")
    first = expand_trials(load_experiment(write(tmp_path, text)).config)
    again = expand_trials(load_experiment(write(tmp_path, text, "b.yaml")).config)
    assert [t.params for t in first] == [t.params for t in again]  # same seed, same draws
    assert len(first) == 5
    for t in first:
        assert 0.01 <= t.params["algorithm.alpha"] <= 1.0
        assert t.params["algorithm.group_size"] in (2, 3, 4)  # hi excluded, as Ray Tune
        assert t.config.algorithm.modulation == t.params["algorithm.modulation"]


def test_optuna_trials_carry_their_domains(tmp_path: Path) -> None:
    exp = write(tmp_path, "tune: {search_alg: optuna, num_samples: 3}\nsearch_space:\n"
                          "  algorithm.alpha: {loguniform: [0.01, 1.0]}\n")
    trials = expand_trials(load_experiment(exp).config)
    assert len(trials) == 3 and all(t.params == {} for t in trials)
    assert trials[0].adaptive["algorithm.alpha"].describe() == "loguniform(0.01, 1)"


def test_focal_gamma_matters_only_for_focal(tmp_path: Path) -> None:
    exp = write(tmp_path, "search_space:\n  algorithm.modulation: {grid: [linear, focal]}\n"
                          "  algorithm.focal_gamma: {grid: [1.0, 2.0]}\n")
    names = [t.name for t in expand_trials(load_experiment(exp).config)]
    assert names == ["linear", "focal-g1", "focal-g2"]


# -- algorithm choices come from the registries ---------------------------------------------
REGISTRY_FIELDS = [(AlgorithmConfig, name) for name in (
    "uncertainty", "modulation", "reward", "estimator", "clustering", "baseline",
    "loss_aggregation")] + [(GcpoConfig, "measure")]


@pytest.mark.parametrize(("model", "field"), REGISTRY_FIELDS)
def test_registry_choice_defaults_are_registered(model, field) -> None:
    """Defaults are accepted without a look-up (as pydantic does), so each must be registered;
    tests/unit/test_boundaries.py checks each field accepts exactly its registry's names."""
    kind = model.model_fields[field].json_schema_extra["registry"]
    assert model.model_fields[field].default in registered_names(kind)


@pytest.mark.parametrize(("text", "expected"), [
    ("algorithm:\n  estimator: raoo\n", "exp.yaml:2: algorithm.estimator = 'raoo' is not one of "
     "'rao', 'kuhn_mc' or 'discrete' (did you mean 'rao'?)"),
    ("algorithm:\n  gcpo: {measure: cosine}\n",
     "algorithm.gcpo.measure = 'cosine' is not one of 'cd' or 'bot'"),
])
def test_a_typo_in_a_registry_choice_lists_the_names_in_one_line(tmp_path: Path, text: str,
                                                                 expected: str) -> None:
    (issue,) = errors_of(write(tmp_path, text))
    assert expected in issue, issue
    assert "plug-in" not in issue and "\n" not in issue  # only plug-in kinds advertise more


def test_reference_lists_each_registry_choice() -> None:
    reference = render_reference()
    for model, field in REGISTRY_FIELDS:
        prefix = "algorithm.gcpo" if model is GcpoConfig else "algorithm"
        (row,) = [r for r in reference.splitlines() if r.startswith(f"| `{prefix}.{field}` |")]
        kind = model.model_fields[field].json_schema_extra["registry"]
        column = row.split(" | ")[1]  # the type column (its own pipes are escaped: \\|)
        assert all(f"`{name}`" in column for name in builtin_names(kind)), column


def test_a_default_loss_aggregation_does_not_load_torch() -> None:
    """The loss-aggregation registry lives with the torch losses: a dry run must not pay for it."""
    code = ("import sys\nfrom seedgrpo.config import expand_trials, load_experiment\n"
            f"expand_trials(load_experiment({str(REPO_ROOT / 'experiments' / 'alpha_grid.yaml')!r},"
            " ['algorithm.loss_aggregation=dr_grpo']).config)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "False"


# -- resources -------------------------------------------------------------------------------
def test_bundles_follow_the_trial_config() -> None:
    cfg = ExperimentConfig(rollout={"num_workers": 2}, learner={"num_ranks": 4},
                           resources={"learner_rank": {"cpus": 1, "gpus": 1,
                                                       "custom": {"gpu_node": 0.01}}})
    roles = [b.role for b in trial_bundles(cfg)]
    assert roles == ["driver", "scorer", "rollout_worker", "rollout_worker"] + ["learner_rank"] * 4
    # 0.25 + 0.25 + 2 * 0.5 + 4 * 1 CPUs; 4 GPUs; the custom marker summed
    assert total_resources(cfg) == {"CPU": 5.5, "GPU": 4.0, "gpu_node": 0.04}
    assert describe_resources(cfg) == "CPU 5.5, GPU 4, gpu_node 0.04"


# -- hostile and malformed files: each refused in one readable line ----------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("algorithm:\n  alpha: .inf\n", "algorithm.alpha = inf must be a finite number"),
        ("algorithm:\n  alpha: 1e400\n", "algorithm.alpha = inf must be a finite number"),
        ("resources:\n  driver: {cpus: .nan}\n", "must be a finite number"),
        ("learner:\n  num_ranks: true\n", "learner.num_ranks = True has the wrong type"),
        ("algorithm:\n  alpha: '0.5'\n", "algorithm.alpha = '0.5' has the wrong type"),
        ("algorithm:\n  group_size: 2.0\n", "algorithm.group_size = 2.0 has the wrong type"),
        ("algorithm:\n  alpha: 1\nalgorithm:\n  alpha: 2\n",
         "exp.yaml:3: algorithm: is written twice (lines 1 and 3)"),
        ("algorithm: " + "[" * 5000 + "]" * 5000 + "\n", "is nested too deeply"),
        ("search_space:\n  algorithm.alpha: {uniform: [0, " + "9" * 400 + "]}\n",
         "uniform bounds must be finite numbers of sensible size"),
        ("search_space:\n  algorithm.alpha: {grid: [.inf]}\n", "must be a finite number"),
        ("search_space:\n  algorithm.alpha: {kind: grid}\n", "'kind' is not one of grid"),
        ("tune: {num_samples: 100000000}\nsearch_space:\n  algorithm.alpha: {choice: [1, 2]}\n",
         "asks for 100000000 trials; the limit is 10000"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    issues = errors_of(write(tmp_path, text))
    assert any(expected in issue for issue in issues), issues


def test_alias_bomb_is_fast(tmp_path: Path) -> None:
    import time

    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    start = time.monotonic()
    (issue,) = errors_of(write(tmp_path, "\n".join(lines) + "\n"))
    assert time.monotonic() - start < 5.0  # 9^7 references, counted once per node
    assert "holds 6,053,451 values once its YAML aliases (*name) are expanded" in issue, issue


def test_aliases_that_share_a_section_still_work(tmp_path: Path) -> None:
    exp = write(tmp_path, "eval: {benchmarks: &b [heldout], optional_benchmarks: []}\n"
                          "search_space:\n  eval.benchmarks: {grid: [*b, [heldout, amc23]]}\n")
    assert len(expand_trials(load_experiment(exp).config)) == 2


def test_directory_as_search_space_file(tmp_path: Path) -> None:
    (tmp_path / "spaces").mkdir()
    issues = errors_of(write(tmp_path, "search_space: spaces\n"))
    assert any("is a directory, not a YAML file" in issue for issue in issues), issues


def test_set_errors_blame_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (issue,) = errors_of(path, ["eval.benchmarks=aime24,foo"])
    assert issue.startswith("--set eval.benchmarks=aime24,foo: eval: unknown benchmark(s) foo")
    (issue,) = errors_of(path, ["learner.num_ranks=3"])
    assert issue.endswith("(with --set learner.num_ranks=3)")
    (issue,) = errors_of(path, ["search_space=5"])  # one error, not also "is empty"
    assert issue.startswith("--set search_space=5: search_space = 5 must be a mapping")


def test_random_draws_that_coincide_still_run(tmp_path: Path) -> None:
    # Ray Tune semantics: num_samples draws are num_samples trials, even if two draws coincide
    exp = write(tmp_path, "tune: {search_alg: random, num_samples: 3}\nsearch_space:\n"
                          "  algorithm.group_size: {randint: [2, 3]}\n"
                          "train: {prompts_per_step: 2}\nlearner: {num_ranks: 1}\n")
    names = [t.name for t in expand_trials(load_experiment(exp).config)]
    assert names == ["G2", "G2-2", "G2-3"]


@pytest.mark.parametrize("eval_section, message", [
    ({"optional_benchmarks": ["aime25"]}, "unknown benchmark(s) aime25"),
    ({"benchmarks": ["heldout", "aime24"], "optional_benchmarks": ["aime24"]},
     "listed twice in eval.benchmarks and eval.optional_benchmarks"),
    ({"optional_benchmarks": ["heldout"]}, "'heldout' needs no files"),
    ({"limits": {"math500": 4}}, "eval.limits names math500, which is not evaluated"),
    ({"limits": {"heldout": 0}}, "eval.limits must be at least 1 problem"),
])
def test_optional_benchmarks_and_limits_are_checked(eval_section: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(message)):
        ExperimentConfig.model_validate({"eval": eval_section})


def test_tune_metric_cannot_rank_on_an_optional_benchmark() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="may be missing, so it cannot rank trials"):
        ExperimentConfig.model_validate({"eval": {"optional_benchmarks": ["aime24"]},
                                         "tune": {"metric": "eval/aime24/pass_at_1"}})
    cfg = ExperimentConfig.model_validate({"eval": {"optional_benchmarks": ["aime24"],
                                                    "limits": {"aime24": 4, "heldout": 8}}})
    assert cfg.eval.limits == {"aime24": 4, "heldout": 8}
