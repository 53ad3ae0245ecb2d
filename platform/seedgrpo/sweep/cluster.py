"""What a sweep checks when it joins a Ray cluster: can every node reach what trials share?

On one machine everything is shared by construction. On a cluster a trial may run on any node,
including nodes the autoscaler has not started yet, so two things must be reachable from all
of them: the MLflow tracking store (a SQLite file or ``http://127.0.0.1`` on the head would
silently split the sweep into per-node copies, or fail) and the sweep directory (Tune state,
checkpoints, ``result.json``). A sweep refuses to start when either is not, with a message that
says what to use instead; a trial that lands on a node where the sweep directory is missing
fails at once with the same advice (``check_trial_node``).

The URI rules are pure functions (tested exactly); the node checks run one tiny Ray task
pinned to each alive node.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from seedgrpo._compat import ray_autoscaling_status
from seedgrpo.redact import redact_uri

__all__ = ["ClusterView", "SharedStorageError", "inspect_cluster", "tracking_uri_problem",
           "readonly_autoscaler",
           "check_nodes", "check_trial_node", "network_filesystem", "SHARED_MARKER"]

logger = logging.getLogger(__name__)

SHARED_MARKER = "sweep.json"  # written by the driver before any trial starts
# the MLflow URI schemes whose host is a database server (SQLAlchemy stores)
_DB_SCHEMES = ("postgresql", "mysql", "mssql")
# filesystems that other machines can see (/proc/mounts types)
_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs",
               "beegfs", "9p", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs", "fuse.sshfs",
               "fuse.mountpoint-s3", "fuse.goofys", "efs")


class SharedStorageError(Exception):
    """The tracking store or the sweep directory is not reachable from every node."""


@dataclass(frozen=True)
class ClusterView:
    """The cluster as the driver sees it when the sweep starts."""

    node_hosts: tuple[str, ...]  # the IP address of each alive node
    driver_host: str
    autoscaler: bool  # an autoscaler may add nodes (on other hosts) later

    @property
    def multi_node(self) -> bool:
        """Whether a trial may run on another machine than this one, now or later.

        >>> ClusterView(("10.0.0.1",), "10.0.0.1", autoscaler=False).multi_node
        False
        >>> ClusterView(("10.0.0.1", "10.0.0.2"), "10.0.0.1", autoscaler=False).multi_node
        True
        >>> ClusterView(("10.0.0.1",), "10.0.0.1", autoscaler=True).multi_node
        True
        """
        return self.autoscaler or bool(set(self.node_hosts) - {self.driver_host})

    def describe(self) -> str:
        hosts = len(set(self.node_hosts))
        text = f"{len(self.node_hosts)} node(s) on {hosts} host(s)"
        return text + (", autoscaling" if self.autoscaler else "")


def _loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8, ::1, 0.0.0.0: addresses that mean "this machine"."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def tracking_uri_problem(uri: str | None) -> str | None:
    """Why ``uri`` cannot be shared by the nodes of a cluster, or None when it can.

    >>> tracking_uri_problem("http://10.0.0.5:5000") is None
    True
    >>> tracking_uri_problem("sqlite:///mlflow.db")[:40]
    'tracking.mlflow_uri sqlite:///mlflow.db '
    >>> "this machine only" in tracking_uri_problem("http://127.0.0.1:5000")
    True
    >>> tracking_uri_problem("postgresql+psycopg://u@db.internal/mlflow") is None
    True
    >>> tracking_uri_problem(None) is None
    True
    """
    if uri is None or uri.split(":")[0] in ("databricks", "databricks-uc", "uc"):
        return None  # hosted tracking: reachable wherever the credentials are
    use = ("use an MLflow server that every node reaches, e.g. http://HEAD_IP:5000 "
           "(docker/compose.yaml runs one on PostgreSQL): set tracking.mlflow_uri or "
           "$MLFLOW_TRACKING_URI")
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0].lower()
    uri = redact_uri(uri) or uri  # said in messages: without its password
    if scheme in ("", "file", "sqlite"):
        return (f"tracking.mlflow_uri {uri} is a file on this machine: trials on other nodes "
                f"would write to their own copies or fail; {use}")
    if scheme in ("http", "https", *_DB_SCHEMES) and parts.hostname and \
            _loopback(parts.hostname):
        return (f"tracking.mlflow_uri {uri} names this machine only ({parts.hostname}): other "
                f"nodes cannot reach it; {use}")
    return None


def network_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """The type of the network filesystem ``path`` lives on, or None for a local one.

    ``mounts`` is the text of /proc/mounts (read when not given; None where it cannot be).

    >>> table = "overlay / overlay rw 0 0\\nfs-1.efs:/ /mnt/shared nfs4 rw 0 0\\n"
    >>> network_filesystem(Path("/mnt/shared/runs"), table)
    'nfs4'
    >>> network_filesystem(Path("/home/ray/runs"), table) is None
    True
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    best, best_type = "", None
    target = str(path.resolve())
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fs_type = fields[1], fields[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, best_type = point, fs_type
    if best_type and (best_type in _NETWORK_FS or best_type.startswith("fuse.")):
        return best_type
    return None


def inspect_cluster() -> ClusterView:
    """The alive nodes, this driver's host, and whether an autoscaler runs (Ray must be up)."""
    import ray

    hosts = tuple(n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive"))
    return ClusterView(hosts, ray.util.get_node_ip_address(), _autoscaler_running())


def _autoscaler_running() -> bool:
    """Whether an autoscaler with node types of its own runs (Ray must be up).

    Every Ray head runs the v1 monitor; without a cluster config it uses a read-only provider
    that only mirrors the nodes it sees. Its status (in the GCS key-value store) tells the two
    apart. A cluster on autoscaler v2 (KubeRay can use it) is taken as autoscaling.
    """
    try:
        status = ray_autoscaling_status()
        if status:
            return not readonly_autoscaler(json.loads(status))
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        return bool(is_autoscaler_v2(fetch_from_server=True))
    except Exception as err:  # noqa: BLE001 - an old or odd GCS: say so, assume none
        logger.warning("could not tell whether an autoscaler runs (%s): assuming none", err)
        return False


def readonly_autoscaler(status: dict[str, Any]) -> bool:
    """True when the v1 monitor's status is that of the read-only provider, whose node types
    are ``node_<node id>`` (one per node, mirrored); not yet known counts as autoscaling, the
    safe side.

    >>> readonly_autoscaler({"autoscaler_report": {"node_type_mapping": {"ab": "node_ab"}}})
    True
    >>> readonly_autoscaler({"autoscaler_report": {"node_type_mapping": {"ab": "gpu_a100"}}})
    False
    >>> readonly_autoscaler({"autoscaler_report": {}})
    False
    """
    mapping = (status.get("autoscaler_report") or {}).get("node_type_mapping") or {}
    return bool(mapping) and all(kind == f"node_{node}" for node, kind in mapping.items())


def _probe(marker: str, tracking_uri: str | None) -> dict[str, Any]:
    """Run on one node: is the sweep directory there, and does the tracking server answer?"""
    import urllib.request

    found: dict[str, Any] = {"host": socket.gethostname(), "marker": os.path.isfile(marker),
                             "tracking": None}
    parts = urlsplit(tracking_uri or "")
    if tracking_uri and parts.scheme in ("http", "https"):
        # /health needs no credentials, and urllib cannot take them in the URL: user:secret@
        # is dropped (the answer never echoes the password)
        health = parts._replace(netloc=parts.netloc.rpartition("@")[2],
                                path=parts.path.rstrip("/") + "/health", query="", fragment="")
        try:
            with urllib.request.urlopen(health.geturl(), timeout=10):
                pass
        except Exception as err:  # noqa: BLE001 - any failure is the answer
            found["tracking"] = f"{type(err).__name__}: {err}"
    return found


def check_nodes(sweep_root: Path, tracking_uri: str | None, *, timeout_s: float = 120.0,
                node_ids: Sequence[str] | None = None) -> int:
    """Check from every alive node that the sweep directory is visible and the tracking server
    answers; raises ``SharedStorageError`` naming the nodes that fail. Returns the node count.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if node_ids is None:
        node_ids = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    marker = str(sweep_root / SHARED_MARKER)
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
            .remote(marker, tracking_uri) for node in node_ids]
    try:
        answers = ray.get(refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        raise SharedStorageError(f"the check of the sweep directory and the tracking server "
                                 f"did not finish on every node in {timeout_s:g} s") from None
    missing = [a["host"] for a in answers if not a["marker"]]
    if missing:
        raise SharedStorageError(
            f"the sweep directory {sweep_root} is not visible on node(s) "
            f"{', '.join(sorted(set(missing)))}: checkpoints and Tune state must be on a "
            "directory every node shares; set tracking.output_dir or $SEEDGRPO_OUTPUT_DIR to "
            "a shared filesystem (NFS, EFS, Filestore, or a bucket mounted with s3fs/gcsfuse)")
    unreachable = {a["host"]: a["tracking"] for a in answers if a["tracking"]}
    if unreachable:
        host, why = next(iter(unreachable.items()))
        raise SharedStorageError(
            f"the MLflow server {redact_uri(tracking_uri)} does not answer from node(s) "
            f"{', '.join(sorted(unreachable))} ({host}: {why}); start it where every node "
            "reaches it (bind it to 0.0.0.0 and allow the nodes' addresses), or fix "
            "tracking.mlflow_uri / $MLFLOW_TRACKING_URI")
    return len(node_ids)


def check_trial_node(sweep_root: Path) -> None:
    """Called by each trial on its node before anything else: a node the autoscaler added
    after the sweep started was never checked, so its trial checks for itself."""
    if not (sweep_root / SHARED_MARKER).is_file():
        raise SharedStorageError(
            f"the sweep directory {sweep_root} is not visible on node {socket.gethostname()}: "
            "tracking.output_dir (or $SEEDGRPO_OUTPUT_DIR) must be a directory every node of "
            "the cluster shares (NFS, EFS, Filestore, or a bucket mounted with s3fs/gcsfuse)")
