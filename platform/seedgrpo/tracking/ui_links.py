"""Links into the MLflow UI that open a sweep's trials, already filtered and side by side.

MLflow 3's UI is a single-page app whose routes follow the ``#``. Two of them show a sweep
(read from the bundle MLflow 3.17.2 serves, ``mlflow/server/js/build``):

- ``#/experiments/<id>/runs?workflowType=machine_learning&searchFilter=...``: the runs table in
  the model-training view (without ``workflowType`` MLflow 3 may open its GenAI traces overview)
  with the search box filled in. The page reads its search facets from the query string
  (``searchFilter``, ``orderByKey``, ``orderByAsc``, ...). Filtering on the trials' tag
  ``mlflow.parentRunId`` lists the trials themselves as rows, not one collapsed sweep row, and
  sorting on the ranking metric puts the best trial first.
- ``#/compare-runs?runs=[...]&experiments=[...]``: the compare page of those runs, with JSON
  arrays of run ids and experiment ids (``Routes.getCompareRunPageRoute``); the page
  percent-decodes its query before parsing it, so the arrays travel URL-encoded. It shows a
  parallel-coordinates plot over the parameters that differ and every param and metric side
  by side, with no column to choose.

A tracking server has its own UI at its address; a local store (SQLite, a directory, a database
URL) has none until ``mlflow ui`` serves it, by default at http://127.0.0.1:5000, which is where
``--ui`` starts it when that port is free. Links never carry credentials: a browser that needs
them asks for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from seedgrpo.redact import redact_uri

__all__ = ["LOCAL_UI_ADDRESS", "SweepLinks", "compare_url", "is_local_store", "is_tracking_server",
           "runs_url", "server_address", "sweep_links"]

LOCAL_UI_ADDRESS = "http://127.0.0.1:5000"  # where ``mlflow ui`` listens unless told otherwise
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag, set on every trial run
# stores ``mlflow ui --backend-store-uri`` serves: SQLite, a directory, SQLAlchemy databases
_LOCAL_SCHEMES = ("sqlite", "file", "postgresql", "mysql", "mssql")
_ELSEWHERE = ("databricks", "databricks-uc", "uc")  # tracking URIs that are not paths


def is_tracking_server(uri: str) -> bool:
    """Whether ``uri`` is an MLflow tracking server (which serves its own UI), not a store.

    >>> is_tracking_server("https://u:pw@mlflow.example.com"), is_tracking_server("sqlite:///m.db")
    (True, False)
    """
    return uri.lower().startswith(("http://", "https://"))


def is_local_store(uri: str) -> bool:
    """Whether ``mlflow ui`` can serve ``uri`` from here: a SQLite file, a directory (a plain
    path or ``file:``) or a database URL; not a server, not Databricks.

    >>> [is_local_store(u) for u in ("sqlite:///m.db", "/data/mlruns", "file:///data/mlruns",
    ...           "postgresql+psycopg://u:p@db/m", "mlruns", "databricks", "http://h")]
    [True, True, True, True, True, False, False]
    """
    if "://" not in uri and not uri.startswith("file:"):
        return uri.split(":", 1)[0].lower() not in _ELSEWHERE  # a directory path
    return uri.split(":", 1)[0].split("+", 1)[0].lower() in _LOCAL_SCHEMES


def server_address(uri: str) -> str:
    """The address of a tracking server's UI: ``uri`` without credentials, query or fragment.

    A link is pasted into chats and reports, so ``user:password@`` (or a bare token) is dropped,
    not masked: a masked URL would not open, and the browser asks for what the server needs.

    >>> server_address("https://user:s3cret@mlflow.example.com:8443/mlflow/?token=x")
    'https://mlflow.example.com:8443/mlflow'
    >>> server_address("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    """
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))


def _json_array(values: list[str]) -> str:
    """A JSON array as ``JSON.stringify`` writes it (no spaces), percent-encoded."""
    return quote(json.dumps(values, separators=(",", ":")), safe="")


def runs_url(address: str, experiment_id: str, parent_run_id: str, *,
             metric: str | None = None, mode: str = "max") -> str:
    """The experiment's runs table in the model-training view, showing only the trials of the
    sweep whose run is ``parent_run_id``, best ``metric`` first.

    >>> print(runs_url("http://127.0.0.1:5000", "1", "abc", metric="eval/avg/pass_at_1"))
    http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&searchFilter=tags.mlflow.parentRunId%20%3D%20%27abc%27&orderByKey=metrics.%60eval%2Favg%2Fpass_at_1%60&orderByAsc=false
    """
    query = {"workflowType": "machine_learning",
             "searchFilter": f"tags.{PARENT_TAG} = '{parent_run_id}'"}
    if metric:  # the UI's sort key for a metric column: metrics.`name`
        query |= {"orderByKey": f"metrics.`{metric}`",
                  "orderByAsc": "true" if mode == "min" else "false"}
    return (f"{address}/#/experiments/{quote(str(experiment_id), safe='')}/runs?"
            + urlencode(query, quote_via=quote))


def compare_url(address: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's compare page of ``run_ids`` (in this order), all in experiment
    ``experiment_id``.

    >>> print(compare_url("http://127.0.0.1:5000", "1", ["aa", "bb"]))
    http://127.0.0.1:5000/#/compare-runs?runs=%5B%22aa%22%2C%22bb%22%5D&experiments=%5B%221%22%5D
    """
    return (f"{address}/#/compare-runs?runs={_json_array(list(run_ids))}"
            f"&experiments={_json_array([str(experiment_id)])}")


@dataclass(frozen=True)
class SweepLinks:
    """The two views of a sweep: its trials in the runs table, and their compare page."""

    address: str  # the UI they open in
    runs: str
    compare: str
    # a local store (its URI, redacted, for ``mlflow ui --backend-store-uri``): the links open
    # once a UI serves it; None: a tracking server's own UI
    store: str | None = None

    @property
    def local(self) -> bool:
        return self.store is not None

    def console(self) -> list[str]:
        """The two links as the commands print them, aligned, under their own heading."""
        return [f"  trials:  {self.runs}", f"  compare: {self.compare}"]

    def markdown(self) -> list[str]:
        """report.md's section: the links and, for a local store, how to open them."""
        lines = ["## The trials in the MLflow UI", "",
                 f"- [The trials in the runs table]({self.runs}): this sweep's only, the best "
                 "first",
                 f"- [The trials side by side]({self.compare}): MLflow's compare page, a "
                 "parallel-coordinates plot over the swept parameters and every param and "
                 "metric in columns", ""]
        if self.store is not None:
            lines += [f"The store is local: the links open at {self.address} once a UI serves "
                      "it, `seedgrpo-report SWEEP_DIR --ui` (this report's sweep directory) or "
                      f"`mlflow ui --backend-store-uri {self.store}`.", ""]
        return lines


def sweep_links(tracking_uri: str, experiment_id: str, parent_run_id: str,
                trial_run_ids: list[str], *, metric: str | None = None, mode: str = "max",
                address: str | None = None) -> SweepLinks | None:
    """The links to a sweep's trials: at the tracking server's own UI, or for a local store
    at ``address`` (the UI ``--ui`` started; by default where ``mlflow ui`` listens). None for
    a store with a UI elsewhere (Databricks): no link here would open it.

    >>> links = sweep_links("https://u:pw@mlflow.example.com", "7", "p", ["a", "b"])
    >>> links.address, links.local, links.compare.split("#")[1][:18]
    ('https://mlflow.example.com', False, '/compare-runs?runs')
    >>> sweep_links("sqlite:////tmp/m.db", "7", "p", ["a"]).address
    'http://127.0.0.1:5000'
    >>> sweep_links("databricks", "7", "p", ["a"]) is None
    True
    """
    local = not is_tracking_server(tracking_uri)
    if local and not is_local_store(tracking_uri):
        return None
    base = (address or LOCAL_UI_ADDRESS) if local else server_address(tracking_uri)
    base = base.rstrip("/")
    return SweepLinks(base, runs_url(base, experiment_id, parent_run_id, metric=metric,
                                     mode=mode),
                      compare_url(base, experiment_id, trial_run_ids),
                      redact_uri(tracking_uri) if local else None)
