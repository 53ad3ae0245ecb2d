"""The one way a seedgrpo command starts a Ray of its own on this machine.

``seedgrpo-train`` and a local ``seedgrpo-sweep`` both start Ray here, so they share its
settings: no usage statistics and no auth token (Ray 2.60 would otherwise write
``~/.ray/auth_token``; a cluster's auth mode is the cluster's, so joining one with
``--address`` does not come here), no dashboard, worker logs on the console only with ``-v``,
and the experiment's plug-ins importable on every worker (``config.plugins.ray_runtime_env``).
"""

from __future__ import annotations

import logging
import math
import os

__all__ = ["local_num_cpus", "start_local_ray"]


def local_num_cpus(requested: int | None, *, at_least: float = 0.0) -> int:
    """Ray's logical CPUs: ``requested`` (``--num-cpus``) when given, else this machine's
    cores, raised to ``at_least`` (a single training run's needs: it shares the cores rather
    than wait for CPUs that will never come; a sweep passes 0 and refuses instead, naming
    ``--num-cpus``).

    >>> local_num_cpus(3, at_least=8)
    3
    >>> local_num_cpus(None, at_least=10**6)
    1000000
    """
    if requested:
        return requested
    return max(os.cpu_count() or 1, math.ceil(at_least))


def start_local_ray(*, num_cpus: int | None = None, at_least_cpus: float = 0.0,
                    verbose: int = 0) -> None:
    """Start a local Ray for this process (``ray.shutdown()`` stops it)."""
    import ray

    from seedgrpo.config.plugins import ray_runtime_env

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=local_num_cpus(num_cpus, at_least=at_least_cpus),
             include_dashboard=False, log_to_driver=verbose > 0,
             logging_level=logging.INFO if verbose else logging.WARNING,
             runtime_env=ray_runtime_env())  # the experiment's plug-ins, on every worker
