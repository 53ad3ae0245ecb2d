"""Uncertainty sources, modulations and rewards by registry; plug-in modules; the scorer's
``uncertainty`` / ``se`` slots, its per-prompt rows and the active-group metrics."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from seedgrpo.algorithms import (
    MODULATIONS,
    UNCERTAINTY_SOURCES,
    GroupContext,
    Uncertainty,
    measure_uncertainty,
    modulate,
    register_modulation,
    register_uncertainty,
)
from seedgrpo.config import ConfigError, load_experiment
from seedgrpo.config.plugins import import_plugins, ray_runtime_env
from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.rewards import REWARDS, register_reward
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.metrics import group_rows, rollout_metrics, with_prompt_ids
from seedgrpo.runtime.scoring import GroupScore, ScoredBatch, score_batch, score_group
from tests.conftest import REPO_ROOT

_counter = itertools.count()


def completion(text: str, logprobs: list[float] | None = None) -> Completion:
    logprobs = logprobs or [-0.1]
    return Completion(list(range(len(logprobs))), text, logprobs, truncated=False)


@pytest.fixture()
def unique() -> str:
    """A name no other test registers (registries and sys.modules are per process)."""
    return f"t{next(_counter)}_{id(object())}"


@pytest.fixture()
def cleanup():
    """Registered throw-away entries, removed after the test."""
    entries: list[tuple[object, str]] = []
    yield entries
    for registry, name in entries:
        if name in registry:
            registry.unregister(name)


# -- the built-in sources, by hand ----------------------------------------------------------
ONE_RIGHT = [r"\boxed{1}", r"\boxed{2}", r"\boxed{3}", r"\boxed{4}"]


def test_semantic_entropy_source_scales_by_alpha_over_ln_g(strict_verifier) -> None:
    # 2 clusters of 2 (discrete): SE = ln 2; x = 0.5 * ln 2 / ln 4 = 0.25; linear f = 0.75
    group = [completion(t) for t in (r"\boxed{1}", r"\boxed{1}", r"\boxed{2}", r"\boxed{2}")]
    algo = AlgorithmConfig(alpha=0.5, estimator="discrete", clustering="exact")
    score = score_group(group, "1", algo, verifier=strict_verifier)
    assert score.uncertainty == score.se == pytest.approx(math.log(2))
    assert score.factor == pytest.approx(0.75)
    assert score.advantages == pytest.approx([0.375, 0.375, -0.375, -0.375])


def test_gcpo_source_reads_u_and_still_logs_se(strict_verifier) -> None:
    # orthogonal unit rows: CD at its maximum, normalised 1; rewards 1,0,0,0: RD_n = sqrt(3)/2
    # U = 1 - sqrt(3)/2 = 0.133975; x = 2 U; exp f = exp(-2 U); SE (discrete, 4 singletons) ln 4
    algo = AlgorithmConfig(uncertainty="gcpo", modulation="exp", alpha=2.0,
                           estimator="discrete", clustering="exact")
    score = score_group([completion(t) for t in ONE_RIGHT], "1", algo,
                        verifier=strict_verifier, embeddings=[[1, 0], [0, 1], [-1, 0], [0, -1]])
    u = 1 - math.sqrt(3) / 2
    assert score.uncertainty == pytest.approx(u)
    assert score.se == pytest.approx(math.log(4))
    assert score.factor == pytest.approx(math.exp(-2 * u))
    with pytest.raises(ValueError, match="'gcpo' needs one embedding per completion"):
        score_group([completion(t) for t in ONE_RIGHT], "1", algo, verifier=strict_verifier)


def test_the_shipped_reward_variance_plugin(strict_verifier) -> None:
    """experiments/plugins/reward_variance.py, loaded the way the shipped experiment loads it:
    u = (1 - RD_n) ** kappa depends on the rewards alone."""
    loaded = load_experiment(REPO_ROOT / "experiments" / "uncertainty_sources.yaml",
                             ["algorithm.uncertainty=reward_variance",
                              "algorithm.gcpo.kappa=2.0"])
    algo = loaded.config.algorithm  # alpha 1, linear
    assert UNCERTAINTY_SOURCES.get("reward_variance").needs_embeddings is False
    # rewards 1,0,0,0: RD_n = sqrt(3)/2, u = (1 - sqrt(3)/2)^2 = 0.017949; f = 1 - u
    score = score_group([completion(t) for t in ONE_RIGHT], "1", algo, verifier=strict_verifier)
    u = (1 - math.sqrt(3) / 2) ** 2
    assert score.uncertainty == pytest.approx(u) and score.factor == pytest.approx(1 - u)
    assert score.advantages == pytest.approx([a * (1 - u) for a in (0.75, -0.25, -0.25, -0.25)])
    # half right: RD_n = 1, u = 0, nothing modulated, whatever the answers say
    half = [completion(t) for t in (r"\boxed{1}", r"\boxed{1}", r"\boxed{7}", r"\boxed{9}")]
    assert score_group(half, "1", algo, verifier=strict_verifier).factor == 1.0


# -- plug-ins through the public decorators --------------------------------------------------
def test_a_registered_source_modulation_and_reward_drive_the_scorer(
        strict_verifier, unique: str, cleanup) -> None:
    names = {k: f"{k}_{unique}" for k in ("u", "f", "r")}

    @register_uncertainty(names["u"])
    def wrong_fraction(ctx: GroupContext) -> Uncertainty:
        u = sum(r < 0.5 for r in ctx.rewards) / ctx.group_size
        return Uncertainty(u, ctx.algo.alpha * u)

    @register_modulation(names["f"])
    def halve(x: float, gamma: float) -> float:
        return 1.0 - x / 2

    @register_reward(names["r"])
    def starts_with_one(completion: str, gold_answer: str, *, verifier) -> float:
        return 1.0 if completion.startswith(r"\boxed{1") else 0.0

    cleanup += [(UNCERTAINTY_SOURCES, names["u"]), (MODULATIONS, names["f"]),
                (REWARDS, names["r"])]
    algo = AlgorithmConfig(uncertainty=names["u"], modulation=names["f"], reward=names["r"],
                           alpha=0.8, estimator="discrete", clustering="exact")
    group = [completion(t) for t in (r"\boxed{1}", r"\boxed{12}", r"\boxed{3}", r"\boxed{4}")]
    score = score_group(group, "1", algo, verifier=strict_verifier)
    assert score.rewards == [1.0, 1.0, 0.0, 0.0]  # the plug-in reward: "12" counts
    assert score.uncertainty == 0.5  # two of four wrong
    assert score.factor == pytest.approx(1 - 0.8 * 0.5 / 2)  # 0.8
    assert score.advantages == pytest.approx([0.4, 0.4, -0.4, -0.4])
    assert score.se == pytest.approx(math.log(4))  # 4 singleton clusters


def test_a_taken_name_names_its_owner() -> None:
    with pytest.raises(ValueError, match=r"uncertainty source 'gcpo' is already registered "
                                         r"\(by seedgrpo.algorithms.uncertainty\)"):
        register_uncertainty("gcpo")(lambda ctx: Uncertainty(0.0, 0.0))


@pytest.mark.parametrize(("value", "x", "message"), [
    (float("nan"), 0.0, "returned value = nan; it must be a finite number"),
    (0.1, -0.5, "returned x = -0.5; x must be >= 0"),
    ("high", 0.0, "returned value = 'high'"),
])
def test_a_broken_source_fails_naming_itself(unique: str, cleanup, value, x, message) -> None:
    register_uncertainty(unique)(lambda ctx: Uncertainty(value, x))
    cleanup.append((UNCERTAINTY_SOURCES, unique))
    ctx = GroupContext([1.0, 0.0], ["1", "2"], [0, 1], [-0.1, -0.1], None, AlgorithmConfig())
    with pytest.raises(ValueError, match=f"uncertainty source '{unique}' {message}"):
        measure_uncertainty(unique, ctx)


def test_a_modulation_outside_the_unit_interval_is_refused(unique: str, cleanup) -> None:
    register_modulation(unique)(lambda x, gamma: 1.0 + x)
    cleanup.append((MODULATIONS, unique))
    with pytest.raises(ValueError, match=rf"modulation '{unique}' gave f\(0.5\) = 1.5; f must "
                                         r"map into \[0, 1\]"):
        modulate(0.5, unique)


def test_an_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError) as info:
        AlgorithmConfig(uncertainty="semantic_entropyy")
    text = str(info.value)
    assert ("= 'semantic_entropyy' is not one of 'semantic_entropy', 'gcpo'" in text
            and "(did you mean 'semantic_entropy'?)" in text)
    with pytest.raises(ValueError, match="= 'maths' is not one of 'math'"):
        AlgorithmConfig(reward="maths")


# -- per-prompt rows, metrics, and batches saved by the old code -----------------------------
def _score(advantages: list[float], uncertainty: float, se: float, factor: float,
           cluster_ids: list[int]) -> GroupScore:
    return GroupScore(rewards=[1.0 if a > 0 else 0.0 for a in advantages],
                      answers=[None] * len(advantages), cluster_ids=cluster_ids,
                      advantages=advantages, uncertainty=uncertainty, se=se, factor=factor,
                      num_clusters=len(set(cluster_ids)))


def test_active_means_skip_groups_with_zero_advantages() -> None:
    scores = [_score([0.5, -0.5, 0.5, -0.5], 0.2, 0.6, 0.8, [0, 1, 0, 1]),
              _score([0.0] * 4, 1.0, 0.0, 0.0, [0, 0, 0, 0]),
              _score([0.3, -0.1, -0.1, -0.1], 0.4, 1.0, 0.6, [0, 1, 2, 2])]
    groups = [[completion("x")] * 4] * 3
    m = rollout_metrics(groups, scores)
    assert m["train/uncertainty_mean"] == pytest.approx((0.2 + 1.0 + 0.4) / 3)
    assert m["train/uncertainty_mean_active"] == pytest.approx(0.3)
    assert m["train/factor_mean"] == pytest.approx((0.8 + 0.0 + 0.6) / 3)
    assert m["train/factor_mean_active"] == pytest.approx(0.7)
    assert m["train/se_mean"] == pytest.approx(1.6 / 3)
    assert m["train/zero_adv_frac"] == pytest.approx(1 / 3)
    none_active = rollout_metrics(groups[:1], scores[1:2])
    assert math.isnan(none_active["train/factor_mean_active"])
    assert math.isnan(none_active["train/uncertainty_mean_active"])
    assert none_active["train/factor_mean"] == 0.0

    rows = with_prompt_ids(group_rows(scores), ["p3", "p9", "p1"])
    assert rows[2] == {"prompt_id": "p1", "rewards": [1.0, 0.0, 0.0, 0.0],
                       "cluster_sizes": [1, 1, 2], "uncertainty": 0.4, "se": 1.0,
                       "factor": 0.6, "num_clusters": 3.0, "reward_mean": 0.25,
                       "zero_advantage": False}
    assert [r["zero_advantage"] for r in rows] == [False, True, False]
    assert json.loads(json.dumps(rows)) == rows  # what groups.jsonl holds
    with pytest.raises(ValueError, match="3 group rows but 2 prompt ids"):
        with_prompt_ids(rows, ["p3", "p9"])


def test_a_pending_batch_saved_before_the_rename_still_loads(strict_verifier) -> None:
    algo = AlgorithmConfig(estimator="discrete", clustering="exact")
    batch = score_batch([[completion(t) for t in ONE_RIGHT]], ["1"], algo,
                        verifier=strict_verifier)
    new = json.loads(json.dumps(batch.to_json()))
    assert ScoredBatch.from_json(new).scores == batch.scores
    old = json.loads(json.dumps(new))
    for s in old["scores"]:  # what the old code wrote: its `se` slot held what f read
        s["se"] = s.pop("uncertainty")
    restored = ScoredBatch.from_json(old).scores[0]
    assert restored.uncertainty == restored.se == pytest.approx(math.log(4))
    assert restored.advantages == batch.scores[0].advantages


# -- plug-in modules in experiment files ------------------------------------------------------
def _plugin(directory: Path, module: str, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{module}.py").write_text(
        "from seedgrpo.algorithms import Uncertainty, register_uncertainty\n"
        f"@register_uncertainty({name!r})\n"
        "def constant(ctx):\n"
        "    return Uncertainty(0.3, ctx.algo.alpha * 0.3)\n")


def test_plugins_are_imported_before_validation(tmp_path: Path, unique: str, cleanup) -> None:
    module, name = f"plug_{unique}", f"const_{unique}"
    _plugin(tmp_path / "exp", module, name)
    cleanup.append((UNCERTAINTY_SOURCES, name))
    exp = tmp_path / "exp" / "e.yaml"
    exp.write_text(f"plugins: [{module}]\nalgorithm: {{uncertainty: {name}}}\n"
                   f"search_space:\n  algorithm.uncertainty: {{grid: [{name}, gcpo]}}\n")
    loaded = load_experiment(exp)  # found next to the experiment file
    assert loaded.config.plugins == [module] and loaded.config.algorithm.uncertainty == name
    env = ray_runtime_env()["env_vars"]["PYTHONPATH"]  # what the CLIs hand the Ray workers
    assert str((tmp_path / "exp").resolve()) in env.split(":")
    assert env.endswith("${PYTHONPATH}")
    # the dumped config re-validates anywhere the module imports (a Ray worker)
    assert loaded.config.model_validate(loaded.config.model_dump(mode="json")) == loaded.config


def test_without_the_plugin_its_name_is_unknown(tmp_path: Path, unique: str) -> None:
    exp = tmp_path / "e.yaml"
    exp.write_text(f"algorithm: {{uncertainty: const_{unique}}}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(exp)
    (issue,) = [i.render() for i in info.value.issues]
    assert issue.startswith(f"{exp}:1: algorithm.uncertainty = 'const_{unique}' is not one of "
                            "'semantic_entropy', 'gcpo'")


@pytest.mark.parametrize(("source", "expected"), [
    (None, "plugins: module '{m}' not found (looked on sys.path and {d})"),
    ("raise RuntimeError('no GPU here')\n",
     "plugins: module '{m}' failed to import: RuntimeError: no GPU here"),
    ("import not_a_module_anywhere_xyz\n",
     "plugins: module '{m}' failed to import: ModuleNotFoundError: No module named "
     "'not_a_module_anywhere_xyz'"),
    ("def broken(:\n", "plugins: module '{m}' failed to import: SyntaxError: "),
    ("from seedgrpo.algorithms import register_modulation\n"
     "register_modulation('linear')(lambda x, g: 1.0)\n",
     "plugins: module '{m}' failed to import: ValueError: modulation function 'linear' is "
     "already registered (by seedgrpo.algorithms.modulation)"),
])
def test_a_plugin_that_fails_is_one_line(tmp_path: Path, unique: str, source, expected) -> None:
    module = f"bad_{unique}"
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    exp = tmp_path / "e.yaml"
    exp.write_text(f"plugins: [{module}]\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(exp)
    (issue,) = [i.render() for i in info.value.issues]
    assert "\n" not in issue
    assert issue.startswith(f"{exp}: " + expected.format(m=module, d=tmp_path.resolve()))
    assert module not in sys.modules


@pytest.mark.parametrize("value", ["my-plugin", "../evil", 3])
def test_a_plugin_entry_must_be_a_module_name(tmp_path: Path, value) -> None:
    with pytest.raises(ValueError, match="is not a Python module name"):
        import_plugins([value], [tmp_path])
