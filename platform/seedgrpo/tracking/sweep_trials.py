"""A sweep's trials as MLflow holds them: the experiment and the run ids its UI links need.

The links themselves are built by the pure ``seedgrpo.tracking.ui_links``; this is the one
read of the store behind them, shared by the sweep's and the report's last lines and by
report.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedgrpo.tracking.mlflow_run import tracking_client
from seedgrpo.tracking.ui_links import PARENT_TAG, SweepLinks, sweep_links

__all__ = ["SweepRunIds", "find_sweep_links", "read_sweep_trials"]


@dataclass(frozen=True)
class SweepRunIds:
    experiment_id: str
    run_ids: list[str]  # the trials' runs, in the order they started


def read_sweep_trials(uri: str, parent_run_id: str) -> SweepRunIds:
    """The experiment of the sweep run ``parent_run_id`` and its trials' run ids (the runs
    tagged with it as their parent), oldest first: the order the sweep ran them."""
    client = tracking_client(uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=10_000, order_by=["attributes.start_time ASC"])
    return SweepRunIds(experiment_id, [r.info.run_id for r in runs])


def find_sweep_links(uri: str, parent_run_id: str, *, metric: str | None = None,
                     mode: str = "max", address: str | None = None) -> SweepLinks | None:
    """The UI links of the sweep run ``parent_run_id`` in the store at ``uri`` (the live URI:
    it is read here, and the links drop its credentials); ``address`` as in
    :func:`seedgrpo.tracking.ui_links.sweep_links`."""
    trials = read_sweep_trials(uri, parent_run_id)
    return sweep_links(uri, trials.experiment_id, parent_run_id, trials.run_ids, metric=metric,
                       mode=mode, address=address)
