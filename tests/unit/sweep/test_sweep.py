"""The sweep's pure parts: Tune spaces, trial resolution, the sweep directory, the console."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from seedgrpo.config import ExperimentConfig, expand_trials
from seedgrpo.sweep.console import ConsoleRow, SweepConsole, render_table
from seedgrpo.sweep.layout import SweepDir, SweepNotFound, SweepRecord, config_fingerprint
from seedgrpo.sweep.runner import SweepError, check_capacity
from seedgrpo.sweep.space import SweepSpace, tune_domain


def _cfg(**sections) -> ExperimentConfig:
    return ExperimentConfig.model_validate(sections)


def test_grid_space_runs_exactly_the_dry_run_trials() -> None:
    cfg = _cfg(search_space={"algorithm.modulation": {"grid": ["none", "linear"]},
                             "algorithm.alpha": {"grid": [0.5, 1.0]}})
    trials = expand_trials(cfg)
    space = SweepSpace.from_trials(cfg, trials)
    grid = space.param_space()["trial"]
    assert grid == {"grid_search": [0, 1, 2]}
    resolved = [space.resolve({"trial": i}) for i in grid["grid_search"]]
    assert [t.name for t in resolved] == ["none", "linear-a0.5", "linear-a1"]
    assert resolved[2].config.algorithm.alpha == 1.0
    bundles = space.resources({"trial": 1}).bundles
    assert bundles == [{"CPU": 0.25}, {"CPU": 0.25}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}]


def test_optuna_space_samples_domains_and_names_trials_by_value() -> None:
    from ray import tune

    cfg = _cfg(tune={"search_alg": "optuna", "num_samples": 3},
               search_space={"algorithm.alpha": {"loguniform": [0.01, 2.0]},
                             "algorithm.modulation": {"choice": ["none", "linear"]},
                             "learner.num_ranks": {"randint": [1, 3]}})
    space = SweepSpace.from_trials(cfg, expand_trials(cfg))
    domains = space.param_space()
    assert isinstance(domains["algorithm.alpha"], tune.search.sample.Float)
    assert domains["algorithm.modulation"].categories == ["none", "linear"]
    assert (domains["learner.num_ranks"].lower, domains["learner.num_ranks"].upper) == (1, 3)
    trial = space.resolve({"algorithm.alpha": 0.123, "algorithm.modulation": "linear",
                           "learner.num_ranks": 1}, "ab12c_00007")
    assert trial.name == "t7-linear-a0.123-num_ranks1" and trial.config.algorithm.alpha == 0.123
    assert trial.config.search_space == {}
    # `none` ignores alpha: left out of the name and of the varied values
    base = space.resolve({"algorithm.alpha": 0.5, "algorithm.modulation": "none",
                          "learner.num_ranks": 1}, "ab12c_00002")
    assert base.name == "t2-none-num_ranks1" and "algorithm.alpha" not in base.params
    # the placement group follows the trial's own config
    assert len(space.resources({"algorithm.alpha": 0.5, "algorithm.modulation": "none",
                                "learner.num_ranks": 2}).bundles) == 5


def test_tune_domain_refuses_a_grid() -> None:
    from seedgrpo.config.schema import Domain

    with pytest.raises(ValueError, match="grids are expanded"):
        tune_domain(Domain.model_validate({"grid": [1, 2]}))


def test_sweep_dir_new_latest_and_record(tmp_path: Path) -> None:
    with pytest.raises(SweepNotFound, match="no sweep of this experiment"):
        SweepDir.latest(tmp_path)
    first = SweepDir.new(tmp_path)
    second = SweepDir.new(tmp_path)  # same second: still a new directory
    assert first != second and SweepDir.latest(tmp_path) == second
    record = SweepRecord("x.yaml", ["train.lr=0.1"], config_fingerprint({"a": 1}), "x", None)
    second.write(record)
    assert second.read() == record
    with pytest.raises(SweepNotFound, match="not a sweep directory"):
        first.read()
    assert config_fingerprint({"a": 1, "b": 2}) == config_fingerprint({"b": 2, "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})


def test_capacity_names_the_resource_and_the_way_out() -> None:
    gpu = _cfg(resources={"learner_rank": {"gpus": 1}})
    with pytest.raises(SweepError, match="needs GPU 2 but this Ray has GPU 0") as err:
        check_capacity([gpu], {"CPU": 16.0}, local=True)
    assert err.value.bad_input and "resources.*.gpus" in str(err.value)
    custom = _cfg(resources={"scorer": {"custom": {"big_node": 1}}})
    with pytest.raises(SweepError, match="big_node 1"):
        check_capacity([custom], {"CPU": 16.0}, local=False)
    check_capacity([gpu], {"CPU": 16.0, "GPU": 2.0}, local=True)


def test_console_prints_events_as_lines_off_a_terminal() -> None:
    class FakeTrial:
        trial_id = "t1"

    stream = io.StringIO()
    console = SweepConsole(lambda trial: ConsoleRow("linear-a0.5", "linear", 0.5, 4, 2),
                           "eval/avg/pass_at_1", stream=stream)
    ended = []
    console.on_end = lambda trial, status: ended.append(status)
    trial = FakeTrial()
    console.on_trial_start(0, [], trial)
    console.on_trial_result(0, [], trial, {"step": 1, "train/reward_mean": 0.25})
    console.on_trial_result(0, [], trial, {"step": 2, "train/reward_mean": 0.5,
                                           "eval/avg/pass_at_1": 0.125})
    console.on_trial_complete(0, [], trial)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["linear-a0.5: RUNNING  step 0/2",
                     "linear-a0.5: RUNNING  step 1/2  reward 0.250",
                     "linear-a0.5: RUNNING  step 2/2  reward 0.500  eval/avg/pass_at_1 0.125",
                     "linear-a0.5: DONE  step 2/2  reward 0.500  eval/avg/pass_at_1 0.125"]
    assert ended == ["DONE"]


def test_console_marks_a_trial_asha_stopped() -> None:
    class FakeTrial:
        trial_id = "t2"

    console = SweepConsole(lambda trial: ConsoleRow("none", "none", None, 8, 4),
                           "eval/avg/pass_at_1", stream=io.StringIO())
    console.on_trial_result(0, [], FakeTrial(), {"step": 2})
    console.on_trial_complete(0, [], FakeTrial())
    row = console.rows["t2"]
    assert (row.status, row.note) == ("STOPPED", "stopped early by ASHA")
    table = render_table([row], "eval/avg/pass_at_1").splitlines()
    assert table[1].split()[:4] == ["none", "STOPPED", "(stopped", "early"]
    assert "  -  " in table[1]  # alpha is not shown for `none`


def test_report_aggregates_seeds() -> None:
    from seedgrpo.sweep.report import ReportRow, aggregate_configurations

    def record(seed: int, value: float) -> ReportRow:
        return ReportRow(f"linear-a0.5-s{seed}", str(seed), "FINISHED", False,
                           {"algorithm.alpha": "0.5", "train.seed": str(seed)}, "linear", 0.5,
                           4, seed, {"eval/avg/pass_at_1": value}, 8)

    (config,) = aggregate_configurations([record(0, 0.2), record(1, 0.4)],
                                         "eval/avg/pass_at_1")
    assert config["configuration"] == "algorithm.alpha=0.5" and config["n"] == 2
    assert config["mean"] == pytest.approx(0.3)
    assert config["std"] == pytest.approx(math.sqrt(0.02))
