"""The rules a sweep applies when it joins a cluster: which tracking URIs and output
directories every node can share, and the environment defaults the cluster images set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from seedgrpo.config.schema import ExperimentConfig, TrackingConfig
from seedgrpo.sweep.cluster import (
    ClusterView,
    SharedStorageError,
    check_trial_node,
    network_filesystem,
    tracking_uri_problem,
)
from seedgrpo.sweep.runner import SweepError, check_capacity, one_node_shortfall


@pytest.mark.parametrize("uri", [
    "sqlite:///mlflow.db", "sqlite:////tmp/m.db", "file:///tmp/mlruns", "/tmp/mlruns", "mlruns",
    "http://127.0.0.1:5000", "http://localhost:5000", "https://[::1]:5000",
    "http://0.0.0.0:5000", "postgresql+psycopg://u@127.0.0.1:5432/mlflow",
    "postgresql://u@localhost/mlflow",
])
def test_uris_other_nodes_cannot_share_are_refused_with_what_to_use(uri: str) -> None:
    problem = tracking_uri_problem(uri)
    assert problem is not None and uri in problem
    assert "MLflow server that every node reaches" in problem
    assert "$MLFLOW_TRACKING_URI" in problem


@pytest.mark.parametrize("uri", [
    None, "http://10.0.0.5:5000", "https://mlflow.example.org", "http://seedgrpo-mlflow:5000",
    "postgresql+psycopg://mlflow@db.internal:5432/mlflow", "databricks",
])
def test_servers_every_node_can_reach_are_accepted(uri: str | None) -> None:
    assert tracking_uri_problem(uri) is None


def test_a_cluster_is_multi_node_when_it_spans_hosts_or_can_grow() -> None:
    assert not ClusterView(("10.0.0.1", "10.0.0.1"), "10.0.0.1", autoscaler=False).multi_node
    assert ClusterView(("10.0.0.1", "10.0.0.2"), "10.0.0.1", autoscaler=False).multi_node
    assert ClusterView(("10.0.0.2",), "10.0.0.1", autoscaler=False).multi_node  # remote driver
    view = ClusterView(("10.0.0.1",), "10.0.0.1", autoscaler=True)
    assert view.multi_node and view.describe() == "1 node(s) on 1 host(s), autoscaling"


def test_network_filesystems_are_told_from_local_ones() -> None:
    mounts = ("overlay / overlay rw 0 0\n"
              "fs-0123.efs.us-west-2.amazonaws.com:/ /mnt/shared nfs4 rw 0 0\n"
              "bucket /mnt/bucket fuse.gcsfuse rw 0 0\n"
              "tmpfs /mnt/shared/tmp tmpfs rw 0 0\n")
    assert network_filesystem(Path("/mnt/shared/runs"), mounts) == "nfs4"
    assert network_filesystem(Path("/mnt/bucket/runs"), mounts) == "fuse.gcsfuse"
    assert network_filesystem(Path("/mnt/shared/tmp/x"), mounts) is None  # the deeper mount
    assert network_filesystem(Path("/mnt/sharedish"), mounts) is None  # not a prefix match
    assert network_filesystem(Path("/home/ray"), mounts) is None


def test_a_trial_on_a_node_without_the_sweep_directory_fails_with_advice(tmp_path: Path
                                                                          ) -> None:
    with pytest.raises(SharedStorageError, match="not visible on node .*every node"):
        check_trial_node(tmp_path)
    (tmp_path / "sweep.json").write_text("{}")
    check_trial_node(tmp_path)  # the driver's marker is there: nothing to say


def test_environment_defaults_apply_only_where_the_file_is_silent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://10.0.0.5:5000")
    monkeypatch.setenv("SEEDGRPO_OUTPUT_DIR", "/mnt/shared/runs")
    assert TrackingConfig().mlflow_uri == "http://10.0.0.5:5000"
    assert TrackingConfig().output_dir == "/mnt/shared/runs"
    explicit = TrackingConfig(mlflow_uri="sqlite:///here.db", output_dir="out")
    assert (explicit.mlflow_uri, explicit.output_dir) == ("sqlite:///here.db", "out")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("SEEDGRPO_OUTPUT_DIR", "")  # empty means unset, not ""
    assert TrackingConfig().mlflow_uri == "sqlite:///mlflow.db"
    assert TrackingConfig().output_dir == "runs"


@pytest.mark.parametrize("value", ["s3://bucket/runs", "gs://bucket/runs", " "])
def test_output_dir_must_be_a_filesystem_path(value: str) -> None:
    with pytest.raises(ValidationError, match="output_dir"):
        TrackingConfig(output_dir=value)


def test_a_custom_resource_no_node_has_is_explained() -> None:
    cfg = ExperimentConfig.model_validate(
        {"resources": {"learner_rank": {"cpus": 0.5, "custom": {"gpu_a100_80g": 1}}}})
    with pytest.raises(SweepError, match="gpu_a100_80g 2 but this Ray has gpu_a100_80g 0"):
        check_capacity([cfg], {"CPU": 8.0}, local=True)


def _strict(**resources: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"resources": {"placement_strategy": "STRICT_PACK", **resources}})


def test_a_strict_pack_trial_must_fit_one_node_of_a_fixed_cluster() -> None:
    """Two 1-CPU nodes hold the default trial's 2 CPUs in all, but not on one node."""
    with pytest.raises(SweepError, match="needs CPU 2 on one node .* nearest node has CPU 1"):
        check_capacity([_strict()], {"CPU": 2.0}, local=False, nodes=[{"CPU": 1.0}] * 2)
    check_capacity([_strict()], {"CPU": 3.0}, local=False, nodes=[{"CPU": 1.0}, {"CPU": 2.0}])
    # PACK spans nodes: the same cluster is enough
    check_capacity([ExperimentConfig()], {"CPU": 2.0}, local=False, nodes=[{"CPU": 1.0}] * 2)


def test_the_one_node_check_names_what_the_closest_node_lacks() -> None:
    cfg = _strict(learner_rank={"cpus": 0.5, "gpus": 1})
    nodes = [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 2.0}]
    problem = one_node_shortfall([cfg], nodes)
    assert problem is not None and "GPU 2 on one node" in problem
    assert one_node_shortfall([cfg], [{"CPU": 2.0, "GPU": 2.0}]) is None
    assert one_node_shortfall([ExperimentConfig()], nodes) is None  # PACK: never checked


@pytest.mark.parametrize("strategy", ["PACK", "STRICT_PACK", "SPREAD"])
def test_each_trial_asks_ray_for_its_placement_strategy(strategy: str) -> None:
    """The placement group Tune creates for a trial carries the config's strategy."""
    from seedgrpo.config import PlannedTrial
    from seedgrpo.sweep.space import TRIAL_KEY, SweepSpace

    cfg = ExperimentConfig.model_validate({"resources": {"placement_strategy": strategy}})
    space = SweepSpace.from_trials(cfg, [PlannedTrial(0, "base", {}, cfg)])
    pgf = space.resources({TRIAL_KEY: 0})
    assert pgf.strategy == strategy
    assert len(pgf.bundles) == 5


def test_an_unknown_placement_strategy_names_the_choices() -> None:
    with pytest.raises(ValidationError, match="STRICT_PACK"):
        ExperimentConfig.model_validate({"resources": {"placement_strategy": "pack"}})
