"""Renamed config keys: the old spelling still loads everywhere a key can be written (a file,
``--set``, a search-space parameter, a saved config), warns once per process, and clashes with
the new spelling as a one-line error."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedgrpo.config import (
    ConfigError,
    ExperimentConfig,
    expand_trials,
    load_experiment,
    renamed_keys,
)
from seedgrpo.config.reference import render_reference
from seedgrpo.config.renamed_keys import RENAMED_KEYS, rename_keys, renamed_path

BASE = "model: {source: tiny-random, name: tiny-llama}\n"
OLD = "algorithm: {modulation: focal, gamma: 3.0}\nlearner: {num_ranks: 2, timeout_s: 120}\n"
NEW = ("algorithm: {modulation: focal, focal_gamma: 3.0}\nlearner: {num_ranks: 2}\n"
       "resources: {call_timeout_s: 120}\n")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no old key warned about yet."""
    monkeypatch.setattr(renamed_keys, "_warned", set())


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    """Every FutureWarning raised, repeats included (the module, not Python, must dedupe)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield seen


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(BASE + text)
    return path


def future(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, FutureWarning)]


def test_old_spelling_in_a_file_loads_as_the_new_one_with_one_warning_per_key(
        tmp_path: Path, caught: list[warnings.WarningMessage],
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="seedgrpo.config.renamed_keys"):
        old = load_experiment(write(tmp_path, OLD, "old.yaml")).config
    new = load_experiment(write(tmp_path, NEW, "new.yaml")).config
    assert old.algorithm.focal_gamma == 3.0 and old.resources.call_timeout_s == 120.0
    assert old.model_dump(exclude={"tracking"}) == new.model_dump(exclude={"tracking"})
    messages = future(caught)
    assert len(messages) == 2
    for (old_key, new_key), message in zip(RENAMED_KEYS.items(), messages, strict=True):
        assert old_key in message and new_key in message and "rename it in your file" in message
    assert len([r for r in caplog.records if "rename it in your file" in r.getMessage()]) == 2


def test_old_spelling_warns_once_per_process_not_per_load(
        tmp_path: Path, caught: list[warnings.WarningMessage]) -> None:
    path = write(tmp_path, "algorithm: {gamma: 3.0}\n")
    for _ in range(3):
        assert load_experiment(path).config.algorithm.focal_gamma == 3.0
    assert renamed_path("algorithm.gamma") == "algorithm.focal_gamma"
    assert len(future(caught)) == 1


def test_old_spelling_in_set_overrides(tmp_path: Path,
                                       caught: list[warnings.WarningMessage]) -> None:
    path = write(tmp_path, "algorithm: {modulation: focal}\n")
    loaded = load_experiment(path, ["algorithm.gamma=4", "learner.timeout_s=30"]).config
    assert loaded.algorithm.focal_gamma == 4.0 and loaded.resources.call_timeout_s == 30.0
    assert len(future(caught)) == 2


def test_new_spelling_in_set_overrides_the_old_one_in_the_file(
        tmp_path: Path, caught: list[warnings.WarningMessage]) -> None:
    path = write(tmp_path, "algorithm: {gamma: 3.0}\n")
    assert load_experiment(path, ["algorithm.focal_gamma=5"]).config.algorithm.focal_gamma == 5


@pytest.mark.parametrize("space_file", [False, True])
def test_old_spelling_as_a_search_space_parameter(
        tmp_path: Path, caught: list[warnings.WarningMessage], space_file: bool) -> None:
    space = "algorithm.modulation: {grid: [linear, focal]}\nalgorithm.gamma: {grid: [1.0, 2.0]}\n"
    if space_file:
        (tmp_path / "search_spaces").mkdir()
        (tmp_path / "search_spaces" / "gammas.yaml").write_text(space)
        text = "search_space: search_spaces/gammas.yaml\n"
    else:
        text = "search_space:\n" + "".join(f"  {line}\n" for line in space.splitlines())
    (tmp_path / "pyproject.toml").write_text("")  # the project root the file lookup stops at
    cfg = load_experiment(write(tmp_path, text)).config
    assert list(cfg.search_space) == ["algorithm.modulation", "algorithm.focal_gamma"]
    trials = expand_trials(cfg)
    assert [t.name for t in trials] == ["linear", "focal-g1", "focal-g2"]
    assert [t.config.algorithm.focal_gamma for t in trials] == [2.0, 1.0, 2.0]
    assert all("algorithm.gamma" not in t.params for t in trials)
    assert len(future(caught)) == 1


def test_old_spelling_in_a_set_search_space_parameter(
        tmp_path: Path, caught: list[warnings.WarningMessage]) -> None:
    path = write(tmp_path, "algorithm: {modulation: focal}\n")
    cfg = load_experiment(path, ["search_space.algorithm.gamma={grid: [1.0, 3.0]}"]).config
    assert [t.config.algorithm.focal_gamma for t in expand_trials(cfg)] == [1.0, 3.0]


def test_a_saved_config_with_old_keys_still_validates(caught: list[warnings.WarningMessage]
                                                      ) -> None:
    """A checkpoint's or a sweep's saved config may predate the rename."""
    saved = ExperimentConfig().model_dump(mode="json")
    saved["algorithm"]["gamma"] = saved["algorithm"].pop("focal_gamma")
    saved["learner"]["timeout_s"] = saved["resources"].pop("call_timeout_s")
    saved["search_space"] = {"algorithm.gamma": {"grid": [1.0, 2.0]}}
    cfg = ExperimentConfig.model_validate(saved)
    assert cfg == ExperimentConfig(search_space={"algorithm.focal_gamma": {"grid": [1.0, 2.0]}})
    assert "gamma" in saved["algorithm"]  # the caller's mapping is left alone


@pytest.mark.parametrize(("text", "old"), [
    ("algorithm: {gamma: 3.0, focal_gamma: 2.0}\n", "algorithm.gamma"),
    ("learner: {timeout_s: 30}\nresources: {call_timeout_s: 60}\n", "learner.timeout_s"),
    ("search_space:\n  algorithm.gamma: {grid: [1.0]}\n  algorithm.focal_gamma: {grid: [2.0]}\n",
     "algorithm.gamma"),
    ("search_space:\n  - {algorithm.focal_gamma: {grid: [2.0]}}\n"
     "  - {algorithm.gamma: {grid: [1.0]}}\n", "algorithm.gamma"),
])
def test_both_spellings_are_a_one_line_error_naming_both(
        tmp_path: Path, caught: list[warnings.WarningMessage], text: str, old: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_experiment(write(tmp_path, text))
    (issue,) = err.value.issues
    assert issue.source.endswith("exp.yaml") and "\n" not in issue.message
    assert old in str(issue) and RENAMED_KEYS[old] in str(issue) and "both given" in str(issue)


def test_both_spellings_in_set_name_both(tmp_path: Path,
                                         caught: list[warnings.WarningMessage]) -> None:
    with pytest.raises(ConfigError) as err:
        load_experiment(write(tmp_path, ""), ["algorithm.gamma=1", "algorithm.focal_gamma=2"])
    text = str(err.value)
    assert "--set algorithm.gamma=1" in text and "--set algorithm.focal_gamma=2" in text


def test_rename_keys_leaves_a_misshapen_section_to_validation(
        caught: list[warnings.WarningMessage]) -> None:
    """``resources: 5`` is not a section: the old key stays, and validation reports both."""
    data = {"learner": {"timeout_s": 30}, "resources": 5}
    assert rename_keys(data) == data
    with pytest.raises(ValueError, match="resources"):
        ExperimentConfig.model_validate(data)


def test_the_reference_lists_only_the_new_spellings() -> None:
    reference = render_reference()
    assert "| `algorithm.focal_gamma` |" in reference
    assert "| `resources.call_timeout_s` |" in reference
    assert "| `algorithm.gamma` |" not in reference and "| `learner.timeout_s` |" not in reference


def test_a_sweep_recorded_before_the_rename_still_resumes(tmp_path: Path) -> None:
    """sweep.json of an older sweep holds the fingerprint of the old spellings; the same
    experiment, loaded today, must still be recognised as that sweep (and another is not)."""
    from seedgrpo.sweep.layout import config_fingerprint, fingerprint_matches

    path = tmp_path / "exp.yaml"
    path.write_text(NEW + "search_space:\n  algorithm.focal_gamma: {grid: [1.0, 2.0]}\n")
    today = load_experiment(path).config.model_dump(mode="json")
    then = json.loads(json.dumps(today))  # what the older version dumped for the same file
    then["algorithm"]["gamma"] = then["algorithm"].pop("focal_gamma")
    then["learner"]["timeout_s"] = then["resources"].pop("call_timeout_s")
    then["search_space"] = {"algorithm.gamma": then["search_space"].pop("algorithm.focal_gamma")}
    assert config_fingerprint(then) != config_fingerprint(today)
    assert fingerprint_matches(config_fingerprint(then), today)
    then["algorithm"]["alpha"] = 0.123
    assert not fingerprint_matches(config_fingerprint(then), today)
