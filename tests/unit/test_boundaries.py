"""Registries match the config choices; the pure layers import nothing heavy."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from seedgrpo.algorithms import (
    BASELINES,
    CLUSTERINGS,
    GEOMETRY_MEASURES,
    LOSS_AGGREGATIONS,
    MODULATIONS,
    SE_ESTIMATORS,
    UNCERTAINTY_SOURCES,
    Registry,
)
from seedgrpo.config.sections import AlgorithmConfig, GcpoConfig
from seedgrpo.rewards import REWARDS


@pytest.mark.parametrize(
    ("model", "field", "registry"),
    [
        (AlgorithmConfig, "estimator", SE_ESTIMATORS),
        (AlgorithmConfig, "clustering", CLUSTERINGS),
        (AlgorithmConfig, "baseline", BASELINES),
        (AlgorithmConfig, "loss_aggregation", LOSS_AGGREGATIONS),
        (GcpoConfig, "measure", GEOMETRY_MEASURES),
    ],
)
def test_config_choices_equal_registry_names(model, field, registry) -> None:
    choices = typing.get_args(model.model_fields[field].annotation)
    assert set(choices) == set(registry.names())


# the names plug-ins extend are strings checked against their registry: the package's own
# entries are the built-ins the field's description (docs/CONFIG.md) names
@pytest.mark.parametrize(
    ("field", "registry", "builtins"),
    [
        ("uncertainty", UNCERTAINTY_SOURCES, {"semantic_entropy", "gcpo"}),
        ("modulation", MODULATIONS, {"none", "linear", "exp", "focal", "inverse"}),
        ("reward", REWARDS, {"math"}),
    ],
)
def test_pluggable_choices_are_the_registry(field, registry, builtins) -> None:
    own = {name for name in registry.names()
           if getattr(getattr(registry.get(name), "fn", registry.get(name)), "__module__",
                      "").startswith("seedgrpo.")}
    assert own == builtins
    description = AlgorithmConfig.model_fields[field].description
    assert all(f"`{name}`" in description for name in builtins)
    for name in registry.names():
        assert getattr(AlgorithmConfig(**{field: name}), field) == name
    with pytest.raises(ValueError, match=f"is not one of '{registry.names()[0]}'"):
        AlgorithmConfig(**{field: "no_such_name"})


def test_registry_refuses_a_taken_name() -> None:
    registry: Registry = Registry("thing")
    registry.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        registry.register("a")(lambda: 2)


FORBIDDEN = ("ray", "torch.distributed", "vllm", "deepspeed", "mlflow")


@pytest.mark.parametrize("module", ["seedgrpo.algorithms", "seedgrpo.config", "seedgrpo.rewards",
                                    "seedgrpo.cli.sweep"])
def test_pure_layers_import_nothing_heavy(module: str) -> None:
    """A fresh interpreter imports the module; none of the runtime stacks may come along."""
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "bad += ['torch'] if 'torch' in sys.modules else []\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_policy_loss_loads_torch_lazily() -> None:
    code = ("import sys, seedgrpo.algorithms as A\nassert 'torch' not in sys.modules\n"
            "A.policy_loss\nassert 'torch' in sys.modules\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_device_strings_stay_out_of_pure_layers() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "platform" / "seedgrpo"
    offenders = [
        str(path.relative_to(root))
        for sub in ("algorithms", "config", "rewards")
        for path in (root / sub).rglob("*.py")
        if '"cuda"' in path.read_text() or "'cuda'" in path.read_text()
    ]
    assert offenders == []
