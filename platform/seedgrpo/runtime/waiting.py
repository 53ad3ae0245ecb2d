"""Waiting on remote calls: every wait has a timeout, and every failure names phase and step.

One place turns Ray's errors (timeout, dead actor, failed task, out of memory) into a
``TrainingFailed`` with a message a user can act on, so no phase of a trial ends in a raw traceback.
"""

from __future__ import annotations

from typing import Any

import ray

__all__ = ["TrainingFailed", "wait_for"]


class TrainingFailed(RuntimeError):
    """A trial that cannot go on; the message names the actor or phase and the cause."""


def wait_for(refs: list[Any], phase: str, *, timeout_s: float, step: int | None = None
             ) -> list[Any]:
    """``ray.get(refs)`` bounded by ``timeout_s``; failures become ``TrainingFailed``."""
    where = f" at step {step}" if step is not None else ""
    try:
        return ray.get(refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as err:
        raise TrainingFailed(f"{phase}{where} did not finish within {timeout_s:.0f} s "
                         "(resources.call_timeout_s)") from err
    except ray.exceptions.OutOfMemoryError as err:
        raise TrainingFailed(f"{phase}{where}: a worker was killed for lack of memory; lower "
                         "rollout.gpu_memory_utilization, train.micro_batch_size or the batch "
                         f"size ({err})") from err
    except ray.exceptions.RayActorError as err:
        raise TrainingFailed(f"an actor died while {phase}{where}: {err}") from err
    except ray.exceptions.RayTaskError as err:
        raise TrainingFailed(f"{phase}{where} failed: {err.cause!r}") from err
