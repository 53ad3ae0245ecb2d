"""The last lines of ``seedgrpo-sweep`` and ``seedgrpo-report``: the sweep in the MLflow UI.

Two links, the trials in the runs table and their compare page (``seedgrpo.tracking.ui_links``),
and with ``--ui`` a ``mlflow ui`` that opens them, for a local store, until Ctrl-C
(``seedgrpo.tracking.mlflow_ui``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from seedgrpo.cli.common import EXIT_BAD_INPUT, EXIT_FAILED
from seedgrpo.redact import redact_text, redact_uri
from seedgrpo.tracking.ui_links import SweepLinks, sweep_links

__all__ = ["print_sweep_links", "serve_sweep_ui"]


def _links(uri: str, parent_run_id: str, metric: str, mode: str
           ) -> Callable[[str | None], SweepLinks | None] | None:
    """The sweep's links at a given UI address (None: the default), from one read of MLflow;
    None (a warning printed) when MLflow cannot be read."""
    from seedgrpo.tracking.sweep_trials import read_sweep_trials

    try:
        trials = read_sweep_trials(uri, parent_run_id)
    except Exception as err:  # noqa: BLE001 - a missing link must not fail a finished sweep
        print(f"warning: no MLflow UI links: {redact_uri(uri)} could not be read "
              f"({type(err).__name__}: {redact_text(str(err))[:300]})", file=sys.stderr)
        return None
    return lambda address: sweep_links(uri, trials.experiment_id, parent_run_id,
                                       trials.run_ids, metric=metric, mode=mode,
                                       address=address)


def print_sweep_links(uri: str, parent_run_id: str, *, metric: str, mode: str,
                      open_command: str) -> None:
    """The two links; for a local store, how to open them (``open_command`` is the command
    with ``--ui`` that serves this sweep's store)."""
    at = _links(uri, parent_run_id, metric, mode)
    links = at(None) if at else None
    if links is None:
        return
    if not links.local:
        print(f"the trials in the MLflow UI at {links.address}:")
        print("\n".join(links.console()), flush=True)
        return
    print("the trials in the MLflow UI (a local store: run with --ui to open them):")
    print("\n".join(links.console()))
    print(f"  open:    {open_command}   (or mlflow ui --backend-store-uri {links.store})",
          flush=True)


def serve_sweep_ui(uri: str | None, parent_run_id: str | None, *, metric: str,
                   mode: str) -> int:
    """``--ui``: serve the sweep's local store with ``mlflow ui`` and print the links at its
    real address, until Ctrl-C; then stop it. The exit status: 0 once stopped by the user,
    2 for a store there is nothing to serve, 1 when the server failed."""
    from seedgrpo.tracking.mlflow_ui import UIError, serve_until_interrupted, store_problem
    from seedgrpo.tracking.ui_links import is_local_store, is_tracking_server

    if not uri or not parent_run_id:
        print("error: --ui: the sweep ran without MLflow (tracking.mlflow_uri unset): there "
              "is no UI to open", file=sys.stderr)
        return EXIT_BAD_INPUT
    shown = redact_uri(uri)
    if is_tracking_server(uri):
        at = _links(uri, parent_run_id, metric, mode)
        links = at(None) if at else None
        if links is not None:
            print(f"the trials in the MLflow UI at {links.address}:")
            print("\n".join(links.console()))
        print(f"--ui: {shown} is a tracking server with its own UI: nothing to start",
              flush=True)
        return 0
    if not is_local_store(uri):
        print(f"error: --ui: {shown} is not a store mlflow ui can serve from here: nothing to "
              "start", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = store_problem(uri)
    if problem is not None:
        print(f"error: --ui: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    at = _links(uri, parent_run_id, metric, mode)
    if at is None:
        return EXIT_FAILED

    def ready(address: str) -> None:
        served = at(address)
        assert served is not None  # a local store has links at any address
        print(f"MLflow UI for {shown} at {address} (Ctrl-C stops it):")
        print("\n".join(served.console()), flush=True)

    print(f"starting the MLflow UI for {shown} ...", flush=True)
    try:
        stopped_by_user = serve_until_interrupted(uri, ready)
    except UIError as err:
        print(f"error: --ui: {err}", file=sys.stderr)
        return EXIT_FAILED
    if not stopped_by_user:
        print("error: --ui: mlflow ui ended by itself", file=sys.stderr)
        return EXIT_FAILED
    print("\nMLflow UI stopped", flush=True)
    return 0
