"""A Ray cluster that autoscales on one machine: Ray's fake multi-node provider, started safely.

``ray.cluster_utils.AutoscalingCluster`` does this too, but its start and shutdown run
``ray stop --force``, which kills every Ray process of the user on the machine
(docs/PLATFORM_NOTES.md, "Ray on a shared machine"), and the PyPI wheel lacks the base config it
reads. Here the config is written in full, the head
runs as ``ray start --head --block`` in a session of its own with its own temp directory, and
stopping kills only that session's processes (the head, the autoscaler, the fake worker nodes
it launched and their workers), by id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import descendants, free_port, in_session, stop_pids, wait_until

# as the Makefile sets them: Ray 2.60's token auth off (a test cluster on loopback), no telemetry
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

_STATUS_SCRIPT = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
from seedgrpo._compat import ray_autoscaling_status
nodes = [{"id": n["NodeID"], "alive": n["Alive"], "resources": n["Resources"]}
         for n in ray.nodes()]
print(json.dumps({"nodes": nodes, "autoscaler": bool(ray_autoscaling_status())}))
"""


@dataclass
class FakeAutoscalingCluster:
    """Head with ``head_resources``; worker types as in a cluster launcher config."""

    worker_types: dict[str, dict[str, Any]]
    head_cpus: float = 0
    idle_timeout_minutes: float = 0.1
    host: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sg-ray-",
                                                                      dir="/tmp")))
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = free_port()
        self.address = f"{self.host}:{self.port}"
        self.log = self.root / "head.log"

    def config(self) -> dict[str, Any]:
        """The autoscaler's cluster config (the fields the fake provider reads, all given)."""
        types = {name: {"node_config": {}, **spec} for name, spec in self.worker_types.items()}
        types["ray.head.default"] = {"resources": {"CPU": self.head_cpus}, "node_config": {},
                                     "max_workers": 0}
        return {
            "cluster_name": f"seedgrpo-test-{self.port}",
            "max_workers": sum(t.get("max_workers", 0) for t in self.worker_types.values()),
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                         "disable_node_updaters": True, "disable_launch_config_check": True,
                         "gcs_address": self.address},
            "available_node_types": types,
            "head_node_type": "ray.head.default",
            "upscaling_speed": 1.0,
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
            "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
            "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
            "worker_setup_commands": [], "head_start_ray_commands": [],
            "worker_start_ray_commands": [],
        }

    def start(self, timeout: float = 180.0) -> None:
        config_file = self.root / "autoscaling.json"
        config_file.write_text(json.dumps(self.config(), indent=1))
        ray_bin = str(Path(sys.executable).parent / "ray")
        cmd = [ray_bin, "start", "--head", "--block", f"--port={self.port}",
               f"--node-ip-address={self.host}", f"--num-cpus={self.head_cpus:g}",
               f"--autoscaling-config={config_file}", f"--temp-dir={self.root / 'ray'}",
               "--include-dashboard=false", "--disable-usage-stats",
               "--object-store-memory=200000000"]
        env = {**os.environ, **RAY_ENV, "RAY_FAKE_CLUSTER": "1",
               "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

        def autoscaler_up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("ray start exited:\n" + self.log.read_text()[-3000:])
            try:
                return bool(self.status()["autoscaler"])
            except subprocess.CalledProcessError:
                return False

        wait_until(autoscaler_up, timeout, "fake autoscaling cluster", log=self.log,
                   interval=2.0)

    def status(self) -> dict[str, Any]:
        """Alive nodes and their resources, read by a short-lived driver of its own."""
        out = subprocess.run([sys.executable, "-c", _STATUS_SCRIPT, self.address],
                             capture_output=True, text=True, check=True, timeout=120,
                             env={**os.environ, **RAY_ENV})
        return json.loads(out.stdout.strip().splitlines()[-1])

    def alive_workers(self, resource: str) -> int:
        """Alive nodes that carry ``resource`` (the worker type's marker)."""
        return sum(1 for n in self.status()["nodes"]
                   if n["alive"] and n["resources"].get(resource))

    def stop(self) -> None:
        """Stop the head's session and everything in it; remove our temp directory and the
        ``ray_current_cluster`` file if it points at this cluster."""
        if self.proc is None:
            return
        pids = descendants(self.proc.pid) | in_session(self.proc.pid)
        stop_pids(pids, grace_s=20)
        stop_pids(in_session(self.proc.pid), grace_s=5)  # anything started while stopping
        self.proc = None
        for pointer in (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster",
                        self.root / "ray" / "ray_current_cluster"):
            try:
                if pointer.read_text().strip() == self.address:
                    pointer.unlink()
            except OSError:
                pass
        subprocess.run(["rm", "-rf", str(self.root)], check=False)
