"""The docs that are generated or promised stay true."""

from __future__ import annotations

import re

import seedgrpo.algorithms as algorithms
from seedgrpo.config.reference import render_reference

from ..conftest import REPO_ROOT


def test_config_reference_is_up_to_date() -> None:
    current = (REPO_ROOT / "docs" / "CONFIG.md").read_text()
    assert current == render_reference(), "docs/CONFIG.md is stale: run `make docs`"


def test_every_config_key_is_in_the_reference() -> None:
    from seedgrpo.config import ExperimentConfig

    text = render_reference()
    for section, model in ExperimentConfig.model_fields.items():
        annotation = model.annotation
        for key in getattr(annotation, "model_fields", {}):
            assert f"`{section}.{key}`" in text


def test_readme_api_names_exist() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    names = set(re.findall(r"`(\w+)\(", readme))
    public = set(algorithms.__all__) | {"math_reward"}
    documented = names & public
    assert {"extract_answer", "cluster_answers", "semantic_entropy", "modulate",
            "group_advantages", "seed_grpo_advantages", "policy_loss", "math_reward",
            "gcpo_uncertainty"} <= documented
    for name in documented - {"math_reward"}:
        assert hasattr(algorithms, name)


def test_readme_quick_start_commands_are_the_makefile_targets() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE), "CI must run the README's test command"
