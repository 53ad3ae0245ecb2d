"""The cluster configs in docker/cluster/, checked without a cloud account.

No cluster can be launched here, so these tests check what can be known on one machine: the
launcher config passes Ray's own schema once docs/CLUSTER.md's substitutions are applied; Ray's
own autoscaler scheduling, fed the placement groups the 7B alpha grid's trials ask for, launches
the node type meant for them, one node per trial; the KubeRay manifest has the same node types;
and every node gets the environment the sweep's cluster checks require.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from functools import partial
from pathlib import Path

import pytest
import yaml

from seedgrpo.config import load_experiment
from seedgrpo.config.resources import total_resources, trial_bundles
from seedgrpo.sweep.cluster import tracking_uri_problem
from tests.conftest import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

CLUSTER = REPO_ROOT / "docker" / "cluster"
GUIDE = REPO_ROOT / "docs" / "CLUSTER.md"
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
GRID_7B = REPO_ROOT / "experiments" / "paper" / "alpha_grid_7b.yaml"
# what the guide's variables hold in an example account (the test's stand-ins)
EXAMPLE_VALUES = {
    "ACCOUNT_ID": "123456789012", "REGION": "us-east-1", "SUBNET_ID": "subnet-0a1b2c3d",
    "SECURITY_GROUP_ID": "sg-0a1b2c3d", "EFS_ID": "fs-0a1b2c3d", "AMI_ID": "ami-0a1b2c3d",
}
SED_PAIR = re.compile(r"-e\s+s/([A-Z_]+)/\$\{?(\w+)\}?/g")
SHARED = "/mnt/shared"
SWEEP_ENV = ("SEEDGRPO_OUTPUT_DIR", "SEEDGRPO_DATA_DIR", "SEEDGRPO_CACHE_DIR", "HF_HOME")


def placeholders(text: str) -> list[str]:
    """The placeholders a config's header names (``Placeholders (...): A, B, C.``)."""
    match = re.search(r"Placeholders[^:]*:\s*((?:#?\s*[A-Z_]+,?\s*)+)", text)
    assert match, "the config's header does not list its placeholders"
    return re.findall(r"[A-Z][A-Z_]+", match.group(1))


def guide_substitutions(target: str) -> dict[str, str]:
    """The guide's ``sed -e s/TOKEN/$VAR/g ... docker/cluster/<target>`` command, as pairs."""
    text = GUIDE.read_text()
    for command in re.findall(r"sed (?:[^\n]|\\\n)*?" + re.escape(target), text):
        pairs = dict(SED_PAIR.findall(command))
        if pairs:
            return pairs
    raise AssertionError(f"docs/CLUSTER.md has no sed command that fills in {target}")


def filled_in(path: Path) -> str:
    text = path.read_text()
    for token in guide_substitutions(path.name):
        text = text.replace(token, EXAMPLE_VALUES[token])
    return text


@pytest.fixture(scope="module")
def aws() -> dict:
    return yaml.safe_load(filled_in(CLUSTER / "aws.yaml"))


@pytest.fixture(scope="module")
def aws_prepared(aws: dict) -> dict:
    """The config as `ray up` sees it: Ray's defaults merged in, then Ray's schema check."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(aws))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", ["kuberay.yaml", "kuberay-mlflow.yaml"])
def test_the_guide_fills_in_the_kuberay_placeholders(name: str) -> None:
    assert set(guide_substitutions(name)) == {"ACCOUNT_ID", "REGION"}
    left = re.findall(r"\b(?:ACCOUNT_ID|REGION)\b", filled_in(CLUSTER / name))
    assert not left, f"{name}: placeholders left after the guide's substitutions: {left}"


@pytest.fixture(scope="module")
def kuberay() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(filled_in(CLUSTER / "kuberay.yaml")) if d]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def kuberay_mlflow() -> list[dict]:
    return [d for d in yaml.safe_load_all(filled_in(CLUSTER / "kuberay-mlflow.yaml")) if d]


def worker_types(aws: dict) -> dict[str, dict]:
    return {name: t for name, t in aws["available_node_types"].items()
            if name != aws["head_node_type"]}


def custom_resources(resources: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in resources.items() if k not in ("CPU", "GPU", "memory")}


# -- the cluster launcher config (AWS) ---------------------------------------------------------
def test_the_guide_fills_in_every_placeholder_and_ray_accepts_the_result(
        aws_prepared: dict) -> None:
    raw = (CLUSTER / "aws.yaml").read_text()
    named = placeholders(raw)
    assert set(named) == set(EXAMPLE_VALUES), named
    assert set(guide_substitutions("aws.yaml")) == set(named), \
        "docs/CLUSTER.md's sed command and aws.yaml's placeholders differ"
    for token in named:
        assert re.search(rf"\b{token}\b", raw), f"{token} is named but never used"
    left = re.findall(r"\b(?:[A-Z]+_)*(?:ID|REGION)\b", filled_in(CLUSTER / "aws.yaml"))
    assert not left, f"placeholders left after the guide's substitutions: {left}"
    assert aws_prepared["provider"]["type"] == "aws"


def test_ray_schema_check_catches_a_broken_config(aws: dict) -> None:
    """The check above has teeth: a typo'd key or a wrong type fails it."""
    from jsonschema.exceptions import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(aws)
    broken["idle_timeout"] = broken.pop("idle_timeout_minutes")
    with pytest.raises(ValidationError, match="idle_timeout"):
        validate_config(prepare_config(broken))
    broken = copy.deepcopy(aws)
    broken["available_node_types"]["a100"]["max_workers"] = "four"
    with pytest.raises(ValidationError, match="integer"):
        validate_config(prepare_config(broken))


def test_the_head_takes_no_trial_and_gpu_types_scale_from_zero(aws: dict) -> None:
    head = aws["available_node_types"][aws["head_node_type"]]
    assert head["resources"] == {"CPU": 0}
    start = " ".join(aws["head_start_ray_commands"])
    assert "--num-cpus=0" in start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in start
    assert aws["idle_timeout_minutes"] > 0
    types = worker_types(aws)
    assert {"a100", "l40s"} <= types.keys()
    for name, node_type in types.items():
        assert node_type["min_workers"] == 0, name
        assert 0 < node_type["max_workers"] <= aws["max_workers"], name
        resources = node_type["resources"]
        assert resources["GPU"] > 0, name
        marker = custom_resources(resources)
        assert len(marker) == 1 and next(iter(marker)).startswith("gpu_"), name
        assert next(iter(marker.values())) == resources["GPU"], f"{name}: one marker per GPU"
    worker_start = next(c for c in aws["worker_start_ray_commands"] if "ray start" in c)
    assert "--address=$RAY_HEAD_IP:6379" in worker_start


def test_every_node_runs_the_projects_image_of_this_version(aws: dict, kuberay: dict) -> None:
    image = aws["docker"]["image"]
    assert image == f"{EXAMPLE_VALUES['ACCOUNT_ID']}.dkr.ecr.{EXAMPLE_VALUES['REGION']}" \
                    f".amazonaws.com/seedgrpo:{VERSION}-gpu"
    assert not {"head_image", "worker_image"} & aws["docker"].keys(), \
        "one image for all nodes: Ray refuses a node whose Ray or Python differ from the head's"
    spec = kuberay["RayCluster"]["spec"]
    pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    images = {c["image"] for pod in pods for c in
              pod["spec"].get("initContainers", []) + pod["spec"]["containers"]}
    assert images == {image}


def test_every_node_gets_the_environment_the_sweep_checks(aws: dict) -> None:
    """The sweep directory on the shared mount, the tracking server on the head's private IP
    (which the sweep's URI rule accepts), in every container and every shell."""
    options = " ".join(aws["docker"]["run_options"])
    assert f"-v {SHARED}:{SHARED}" in options
    env = dict(re.findall(r"-e (\w+)=(\S+)", options))
    for name in SWEEP_ENV:
        assert env.get(name, "").startswith(SHARED + "/"), f"{name} is not on {SHARED}"
    mount = " ".join(aws["initialization_commands"])
    assert f"{EXAMPLE_VALUES['EFS_ID']}.efs.{EXAMPLE_VALUES['REGION']}.amazonaws.com:/ {SHARED}" \
        in mount
    registry = aws["docker"]["image"].split("/")[0]
    helper = next(c for c in aws["initialization_commands"] if "credHelpers" in c)
    config = json.loads(re.search(r"echo '(\{.*\})'", helper).group(1))
    assert config == {"credHelpers": {registry: "ecr-login"}}, \
        "every pull of the image logs in to its registry with the node's role"
    assert "amazon-ecr-credential-helper" in mount
    for commands in (aws["head_start_ray_commands"], aws["worker_start_ray_commands"]):
        start = next(c for c in commands if "ray start" in c)
        assert start.startswith(". ~/.seedgrpo.env"), "Ray's processes must see the env file"


@pytest.mark.parametrize("node", ["head", "worker"])
def test_a_nodes_shells_get_a_tracking_uri_the_sweep_accepts(aws: dict, node: str,
                                                              tmp_path: Path) -> None:
    """Run the config's own commands in a scratch home, as Ray runs them in the container:
    the set-up line that makes every shell read ~/.seedgrpo.env, then the start command that
    writes it (on a worker $RAY_HEAD_IP is set by Ray); a new shell then has a URI that the
    sweep's multi-node rule accepts."""
    import os
    import subprocess
    import sys

    setup = next(c for c in aws["setup_commands"] if ".bashrc" in c)
    write = next(c for c in aws[f"{node}_start_ray_commands"] if "MLFLOW_TRACKING_URI" in c)
    env = {"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RAY_HEAD_IP": "172.31.5.17"}
    for command in (setup, setup, write):  # set-up runs again on every `ray up`
        subprocess.run(["bash", "-c", command], env=env, check=True, timeout=120)
    assert (tmp_path / ".bashrc").read_text().count(".seedgrpo.env") == 2, "one line, once"
    shell = subprocess.run(["bash", "-c", ". ~/.bashrc; printenv MLFLOW_TRACKING_URI"],
                           env=env, capture_output=True, text=True, check=True, timeout=60)
    uri = shell.stdout.strip()
    assert re.fullmatch(r"http://[\d.]+:5000", uri), uri
    if node == "worker":
        assert uri == "http://172.31.5.17:5000"
    assert tracking_uri_problem(uri) is None, tracking_uri_problem(uri)


def test_the_heads_mlflow_server_command_is_valid_and_admits_the_nodes(aws: dict) -> None:
    from mlflow.cli import server
    from mlflow.server.security_utils import is_allowed_host_header

    line = next(c for c in aws["head_start_ray_commands"] if "mlflow server" in c)
    command = line[line.index("mlflow server"):].split(" > ")[0]
    argv = shlex.split(command)
    params = server.make_context("server", argv[2:]).params
    assert params["host"] == "0.0.0.0" and params["port"] == 5000
    assert int(params["workers"]) == 1, "SQLite over NFS wants one writer process"
    assert params["backend_store_uri"].startswith(f"sqlite:///{SHARED}/")
    assert params["artifacts_destination"].startswith(f"{SHARED}/")
    hosts = params["allowed_hosts"].split(",")
    for host in ("172.31.5.17:5000", "10.0.3.7:5000", "192.168.1.20:5000", "localhost:5000"):
        assert is_allowed_host_header(hosts, host), host
    assert not is_allowed_host_header(hosts, "evil.example.com:5000")


# -- what the autoscaler does with the 7B alpha grid -------------------------------------------
def pending_trials(count: int, strategy: str | None = None) -> list:
    """The placement groups ``count`` pending 7B trials put before Ray's autoscaler."""
    from ray.core.generated.common_pb2 import Bundle, PlacementStrategy
    from ray.core.generated.gcs_pb2 import PlacementGroupTableData

    cfg = load_experiment(GRID_7B).config
    strategy = strategy or cfg.resources.placement_strategy
    bundles = [Bundle(unit_resources=b.resources) for b in trial_bundles(cfg)]
    return [PlacementGroupTableData(strategy=PlacementStrategy.Value(strategy), bundles=bundles)
            for _ in range(count)]


def nodes_to_launch(aws_prepared: dict, groups: list) -> tuple[dict[str, int], list]:
    """Ray's own autoscaler policy: the pending groups as demands, then node types for them."""
    from ray.autoscaler._private.node_provider_availability_tracker import (
        NodeAvailabilitySummary,
    )
    from ray.autoscaler._private.resource_demand_scheduler import (
        _default_utilization_scorer,
        get_nodes_for,
        placement_groups_to_resource_demands,
    )

    demands, strict_spread = placement_groups_to_resource_demands(groups)
    assert not strict_spread
    scorer = partial(_default_utilization_scorer,
                     node_availability_summary=NodeAvailabilitySummary(node_availabilities={}))
    launch, left = get_nodes_for(aws_prepared["available_node_types"], {},
                                 aws_prepared["head_node_type"], aws_prepared["max_workers"],
                                 demands, scorer)
    return dict(launch), left


@pytest.mark.parametrize("trials", [1, 2, 4])
def test_the_autoscaler_adds_one_a100_node_per_pending_7b_trial(aws_prepared: dict,
                                                                 trials: int) -> None:
    launch, left = nodes_to_launch(aws_prepared, pending_trials(trials))
    assert launch == {"a100": trials}
    assert left == []


def test_trials_beyond_the_a100_max_wait_and_never_take_l40s_nodes(aws_prepared: dict) -> None:
    cap = aws_prepared["available_node_types"]["a100"]["max_workers"]
    launch, left = nodes_to_launch(aws_prepared, pending_trials(cap + 1))
    assert launch == {"a100": cap}
    assert len(left) == 1, "the extra trial waits for a node to free up"


def test_with_pack_four_trials_would_share_three_nodes(aws_prepared: dict) -> None:
    """Why the 7B grid asks for STRICT_PACK: with PACK, Ray's autoscaler packs bundles, not
    trials, and one trial ends up split over three machines."""
    launch, _ = nodes_to_launch(aws_prepared, pending_trials(4, strategy="PACK"))
    assert launch == {"a100": 3}


# -- KubeRay -----------------------------------------------------------------------------------
def ray_start_resources(group: dict) -> dict[str, float]:
    """KubeRay's ``resources: '"{\\"name\\": 8}"'`` start parameter as a dict."""
    text = group["rayStartParams"].get("resources", '"{}"')
    assert text.startswith('"') and text.endswith('"'), \
        "KubeRay passes rayStartParams.resources to `ray start` quoted: '\"{...}\"'"
    return json.loads(text[1:-1].replace('\\"', '"'))


def test_kuberay_has_the_same_node_types_with_in_tree_autoscaling(aws: dict,
                                                                  kuberay: dict) -> None:
    spec = kuberay["RayCluster"]["spec"]
    assert kuberay["RayCluster"]["apiVersion"] == "ray.io/v1"
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == aws["idle_timeout_minutes"] * 60
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    types = worker_types(aws)
    assert groups.keys() == types.keys()
    for name, group in groups.items():
        node_type = types[name]["resources"]
        assert group["minReplicas"] == 0 and group["replicas"] == 0, name
        assert group["maxReplicas"] == types[name]["max_workers"], name
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) == node_type["GPU"], name
        assert container["resources"]["requests"] == limits, f"{name}: requests = limits"
        assert float(limits["cpu"]) <= node_type["CPU"], name
        assert ray_start_resources(group) == custom_resources(node_type), name
        instance = group["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"]
        assert instance == types[name]["node_config"]["InstanceType"], name


def test_every_kuberay_pod_shares_the_volume_and_the_environment(kuberay: dict) -> None:
    env = kuberay["ConfigMap"]["data"]
    assert tracking_uri_problem(env["MLFLOW_TRACKING_URI"]) is None
    for name in SWEEP_ENV:
        assert env[name].startswith(SHARED + "/"), name
    claim = kuberay["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "every pod mounts it"
    spec = kuberay["RayCluster"]["spec"]
    for pod in [spec["headGroupSpec"]["template"]] + [g["template"]
                                                      for g in spec["workerGroupSpecs"]]:
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert pod["spec"]["securityContext"]["runAsUser"] == 1000  # the images' user, ray
        for container in pod["spec"]["containers"]:
            assert {"configMapRef": {"name": kuberay["ConfigMap"]["metadata"]["name"]}} \
                in container["envFrom"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert volumes[mounts[SHARED]]["persistentVolumeClaim"]["claimName"] == \
                claim["metadata"]["name"]
            assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"


def test_a_7b_trial_fits_one_a100_worker_in_both_configs(aws: dict, kuberay: dict) -> None:
    need = total_resources(load_experiment(GRID_7B).config)
    a100 = aws["available_node_types"]["a100"]["resources"]
    assert all(a100.get(k, 0) >= v for k, v in need.items()), (need, a100)
    group = next(g for g in kuberay["RayCluster"]["spec"]["workerGroupSpecs"]
                 if g["groupName"] == "a100")
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    pod = {"CPU": float(limits["cpu"]), "GPU": float(limits["nvidia.com/gpu"]),
           **ray_start_resources(group)}
    assert all(pod.get(k, 0) >= v for k, v in need.items()), (need, pod)


def test_the_kuberay_mlflow_server_is_the_one_the_pods_are_pointed_at(
        kuberay: dict, kuberay_mlflow: list[dict]) -> None:
    from mlflow.cli import server
    from mlflow.server.security_utils import is_allowed_host_header

    uri = kuberay["ConfigMap"]["data"]["MLFLOW_TRACKING_URI"]
    host, port = re.match(r"http://([\w.-]+):(\d+)$", uri).groups()
    services = {d["metadata"]["name"]: d for d in kuberay_mlflow if d["kind"] == "Service"}
    assert int(services[host]["spec"]["ports"][0]["port"]) == int(port)
    deployment = next(d for d in kuberay_mlflow if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith(f"/seedgrpo-mlflow:{VERSION}")
    params = server.make_context("server", container["command"][2:]).params
    hosts = params["allowed_hosts"].split(",")
    for header in (f"{host}:{port}", f"{host}.default.svc.cluster.local:{port}",
                   "localhost:5000"):
        assert is_allowed_host_header(hosts, header), header
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == \
        "seedgrpo-mlflow-db", "the password comes from a Secret, never from this file"
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql+psycopg://")
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())
    database = next(d for d in kuberay_mlflow if d["kind"] == "StatefulSet")
    assert database["spec"]["template"]["spec"]["containers"][0]["image"] == \
        compose["services"]["postgres"]["image"], "the same PostgreSQL as docker/compose.yaml"
