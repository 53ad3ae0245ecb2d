"""Tracking secrets stay in memory, sweep paths stay inside their parents, MLflow filters hold
any name: the sweep record, the resume check, MLflow runs (real SQLite store) and the paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seedgrpo.config import load_experiment
from seedgrpo.sweep.layout import (
    PathOutsideParent,
    SweepDir,
    SweepNotFound,
    SweepRecord,
    config_fingerprint,
    fingerprint_matches,
)
from seedgrpo.sweep.runner import SweepError, SweepOptions, prepare_sweep_dir

SECRET = "hunter2-" + "Zq9"  # built, so a grep of this file for the full value finds none


def _experiment(directory: Path, uri: str, *, output_dir: str | None = None, extra: str = ""
                ) -> Path:
    path = directory / "exp.yaml"
    output_dir = output_dir or str(directory / "runs")
    path.write_text(f"tracking: {{mlflow_uri: '{uri}', output_dir: '{output_dir}'}}\n{extra}")
    return path


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


# -- the sweep record and --resume ---------------------------------------------------------------
def test_sweep_json_keeps_the_uri_redacted_and_the_record_in_memory_live(tmp_path: Path
                                                                         ) -> None:
    uri = f"postgresql+psycopg://mlflow:{SECRET}@db.internal/mlflow"
    loaded = load_experiment(_experiment(tmp_path, uri),
                             [f"tracking.mlflow_uri={uri}?sslmode=require&password={SECRET}"])
    sweep, record, resumed = prepare_sweep_dir(loaded, [
        f"tracking.mlflow_uri={uri}?sslmode=require&password={SECRET}"], SweepOptions())
    assert not resumed
    assert SECRET in record.mlflow_uri  # live: the sweep connects with it
    stored = json.loads((sweep.root / "sweep.json").read_text())
    assert stored["mlflow_uri"] == ("postgresql+psycopg://mlflow:***@db.internal/mlflow"
                                    "?sslmode=require&password=***")
    assert SECRET not in (sweep.root / "sweep.json").read_text()
    assert SECRET not in json.dumps(stored["overrides"])
    assert SECRET not in _all_bytes(tmp_path / "runs").decode()


def test_resume_takes_a_rotated_password_from_this_run(tmp_path: Path) -> None:
    old = f"http://alice:{SECRET}@mlflow.internal:5000"
    new = "http://alice:rotated@mlflow.internal:5000"
    started, record, _ = prepare_sweep_dir(load_experiment(_experiment(tmp_path, old)), [],
                                           SweepOptions())
    # the same sweep, its tracking password rotated and its output directory moved (new mount)
    (tmp_path / "moved").mkdir()
    os.rename(tmp_path / "runs", tmp_path / "moved" / "runs")
    loaded = load_experiment(_experiment(tmp_path, new, output_dir=str(tmp_path / "moved/runs")))
    sweep, record, resumed = prepare_sweep_dir(loaded, [], SweepOptions(resume=True))
    assert resumed and sweep.root.name == started.root.name
    assert record.mlflow_uri == new  # connects with this run's password
    assert json.loads((sweep.root / "sweep.json").read_text())["mlflow_uri"] == \
        "http://alice:***@mlflow.internal:5000"


def test_resume_refuses_a_secret_it_cannot_supply(tmp_path: Path) -> None:
    uri = f"http://alice:{SECRET}@mlflow.internal:5000"
    prepare_sweep_dir(load_experiment(_experiment(tmp_path, uri)), [], SweepOptions())
    other = load_experiment(_experiment(tmp_path, "http://alice:pw@elsewhere:5000"))
    with pytest.raises(SweepError) as err:
        prepare_sweep_dir(other, [], SweepOptions(resume=True))
    message = str(err.value)
    assert err.value.bad_input and "\n" not in message and SECRET not in message
    assert "http://alice:***@mlflow.internal:5000" in message and "MLFLOW_TRACKING_URI" in message


def test_resume_still_refuses_another_config(tmp_path: Path) -> None:
    uri = "sqlite:///" + str(tmp_path / "m.db")
    prepare_sweep_dir(load_experiment(_experiment(tmp_path, uri)), [], SweepOptions())
    changed = load_experiment(_experiment(tmp_path, uri, extra="train: {steps: 3}\n"))
    with pytest.raises(SweepError, match="this config differs"):
        prepare_sweep_dir(changed, [], SweepOptions(resume=True))


def test_fingerprint_leaves_locations_out_and_accepts_a_sweep_recorded_before() -> None:
    a = {"tracking": {"mlflow_uri": "http://u:a@h", "output_dir": "runs",
                      "experiment_name": "x"}, "model": {"cache_dir": None, "name": "m"}}
    b = {"tracking": {"mlflow_uri": "http://u:b@h", "output_dir": "/mnt/runs",
                      "experiment_name": "x"}, "model": {"cache_dir": "/cache", "name": "m"}}
    assert config_fingerprint(a) == config_fingerprint(b)
    assert config_fingerprint(a) != config_fingerprint({**a, "model": {"name": "other"}})
    renamed = {**a, "tracking": {**a["tracking"], "experiment_name": "y"}}
    assert config_fingerprint(a) != config_fingerprint(renamed)
    # a sweep.json written before: its fingerprint hashed the whole config
    import hashlib

    legacy = hashlib.sha256(json.dumps(a, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint_matches(legacy, a) and not fingerprint_matches(legacy, b)


# -- paths built from names ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..", "../elsewhere", "a/../../x", "/etc", "", ".", "a\0b"])
def test_trial_dir_refuses_a_name_that_leaves_trials(tmp_path: Path, name: str) -> None:
    sweep = SweepDir(tmp_path / "sweep")
    with pytest.raises(PathOutsideParent) as err:
        sweep.trial_dir(name)
    assert "\n" not in str(err.value) and "trial name" in str(err.value)


def test_trial_dir_refuses_a_symlink_out_and_keeps_odd_but_inside_names(tmp_path: Path
                                                                        ) -> None:
    sweep = SweepDir(tmp_path / "sweep")
    sweep.trials_dir.mkdir(parents=True)
    (sweep.trials_dir / "escape").symlink_to(tmp_path)
    with pytest.raises(PathOutsideParent):
        sweep.trial_dir("escape")
    assert sweep.trial_dir("it's-a0.5") == sweep.trials_dir / "it's-a0.5"
    assert sweep.trial_dir("..hidden") == sweep.trials_dir / "..hidden"


def test_latest_pointer_outside_the_experiment_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "exp"
    root.mkdir(parents=True)
    (root / "latest").write_text("../../../etc")
    with pytest.raises(SweepNotFound, match="does not name a sweep of this experiment"):
        SweepDir.latest(root)


# -- MLflow: a real SQLite store ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (creating its tables takes seconds); each test its own runs."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_mlflow_run_logs_the_config_without_its_password(tmp_path: Path, sqlite_uri: str
                                                         ) -> None:
    from mlflow.tracking import MlflowClient

    from seedgrpo.config import ExperimentConfig
    from seedgrpo.tracking import MlflowRun

    cfg = ExperimentConfig.model_validate(
        {"tracking": {"mlflow_uri": f"https://tok:{SECRET}@mlflow.example/?token={SECRET}"}})
    run = MlflowRun(sqlite_uri, "x", run_name="t", config=cfg.model_dump(mode="json"))
    run.finish()
    client = MlflowClient(sqlite_uri)
    params = client.get_run(run.run_id).data.params
    assert params["tracking.mlflow_uri"] == "https://tok:***@mlflow.example/?token=***"
    config = Path(client.download_artifacts(run.run_id, "config.json", str(tmp_path)))
    assert SECRET not in config.read_text()
    assert SECRET not in json.dumps(params)


def test_parent_run_logs_a_redacted_copy_of_the_experiment_file(tmp_path: Path,
                                                                  sqlite_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from seedgrpo.sweep.tracking import _log_experiment_file
    from seedgrpo.tracking import MlflowRun

    exp = tmp_path / "exp.yaml"
    exp.write_text(f"tracking: {{mlflow_uri: 'mysql://u:{SECRET}@db/m'}}\n")
    run = MlflowRun(sqlite_uri, "x", run_name="p", config={})
    _log_experiment_file(run, exp)
    got = Path(MlflowClient(sqlite_uri).download_artifacts(run.run_id, "experiment/exp.yaml",
                                                           str(tmp_path / "dl")))
    assert got.read_text() == "tracking: {mlflow_uri: 'mysql://u:***@db/m'}\n"


@pytest.mark.parametrize("sweep_dir, name, sweep_like, name_like", [
    # look-alikes: what the LIKE pattern also matches (a quote there is any one character)
    ("/runs/it's/20250101-000000", "linear-a0.5", "/runs/itXs/20250101-000000", "linearXa0.5"),
    ("/runs/x/1", "it's \"quoted\" \\ 50%_a", "/runs/x/1-", "it's \"quoted\" X 50%_a"),
])
def test_a_retried_trial_finds_its_run_whatever_its_path_or_name_holds(
        sqlite_uri: str, sweep_dir: str, name: str, sweep_like: str, name_like: str) -> None:
    from mlflow.tracking import MlflowClient

    from seedgrpo.sweep.tracking import SWEEP_TAG, TRIAL_TAG, _find_existing
    from seedgrpo.tracking.mlflow_run import experiment_id

    client = MlflowClient(sqlite_uri)
    exp = experiment_id(client, "x")
    for tags in ({SWEEP_TAG: sweep_dir, TRIAL_TAG: name_like},
                 {SWEEP_TAG: sweep_like, TRIAL_TAG: name},
                 {SWEEP_TAG: sweep_dir, TRIAL_TAG: name + "-2"}):
        client.create_run(exp, tags=tags)
    assert _find_existing(sqlite_uri, "x", sweep_dir, name) is None
    run = client.create_run(exp, tags={SWEEP_TAG: sweep_dir, TRIAL_TAG: name})
    assert _find_existing(sqlite_uri, "x", sweep_dir, name) == run.info.run_id


def test_sweep_record_round_trip_keeps_everything_but_the_secret(tmp_path: Path) -> None:
    sweep = SweepDir(tmp_path)
    record = SweepRecord("x.yaml", [f"tracking.mlflow_uri=http://u:{SECRET}@h:1"], "f", "x",
                         f"http://u:{SECRET}@h:1", parent_run_id="abc")
    sweep.write(record)
    back = sweep.read()
    assert back.mlflow_uri == "http://u:***@h:1" and back.parent_run_id == "abc"
    assert back.overrides == ["tracking.mlflow_uri=http://u:***@h:1"]
    assert record.mlflow_uri == f"http://u:{SECRET}@h:1"  # the caller's record is untouched
