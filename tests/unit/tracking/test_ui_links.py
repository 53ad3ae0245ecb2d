"""The MLflow UI links of a sweep, exactly, and read back as MLflow 3.17's UI reads them.

The UI's routes are checked against the bundle the installed MLflow serves, so an MLflow
upgrade that renames a route or a query parameter fails here, not in a user's browser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import mlflow
import pytest

from seedgrpo.tracking.ui_links import (
    LOCAL_UI_ADDRESS,
    SweepLinks,
    compare_url,
    is_local_store,
    runs_url,
    server_address,
    sweep_links,
)

PARENT = "3795348ae7f248b3a676d504f6c0e076"
TRIALS = ["0a1b2c3d4e5f60718293a4b5c6d7e8f9", "1a1b2c3d4e5f60718293a4b5c6d7e8f9",
          "2a1b2c3d4e5f60718293a4b5c6d7e8f9"]
METRIC = "eval/heldout/pass_at_1"
BUNDLE = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


def _route(url: str) -> tuple[str, str]:
    """The hash route of a UI link and its query string."""
    path, _, query = urlsplit(url).fragment.partition("?")
    return path, query


def _compare_page_reads(url: str) -> tuple[list[str], list[str]]:
    """What MLflow's compare page does with its query: decode it until it stops changing,
    split it (qs.parse), and JSON.parse ``runs`` and ``experiments``."""
    _, query = _route(url)
    while unquote(query) != query:
        query = unquote(query)
    fields = dict(part.split("=", 1) for part in query.split("&"))
    return json.loads(fields["runs"]), json.loads(fields["experiments"])


def _runs_page_reads(url: str) -> dict[str, str]:
    """What the runs page reads: its query through URLSearchParams (percent-decoded)."""
    _, query = _route(url)
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def test_the_runs_link_is_the_model_training_view_filtered_to_the_sweep_best_first() -> None:
    url = runs_url("http://127.0.0.1:5000", "12", PARENT, metric=METRIC, mode="max")
    assert url == (
        "http://127.0.0.1:5000/#/experiments/12/runs?workflowType=machine_learning"
        f"&searchFilter=tags.mlflow.parentRunId%20%3D%20%27{PARENT}%27"
        "&orderByKey=metrics.%60eval%2Fheldout%2Fpass_at_1%60&orderByAsc=false")
    assert _route(url)[0] == "/experiments/12/runs"
    assert _runs_page_reads(url) == {
        "workflowType": "machine_learning",
        "searchFilter": f"tags.mlflow.parentRunId = '{PARENT}'",
        "orderByKey": f"metrics.`{METRIC}`", "orderByAsc": "false"}
    lowest_first = runs_url("http://h", "12", PARENT, metric="eval/loss", mode="min")
    assert _runs_page_reads(lowest_first)["orderByAsc"] == "true"
    unsorted = _runs_page_reads(runs_url("http://h", "12", PARENT))
    assert "orderByKey" not in unsorted and "orderByAsc" not in unsorted


def test_the_compare_link_holds_every_trial_in_order_and_the_experiment() -> None:
    url = compare_url("http://127.0.0.1:5000", "12", TRIALS)
    assert url == ("http://127.0.0.1:5000/#/compare-runs?runs=%5B%22" + "%22%2C%22".join(TRIALS)
                   + "%22%5D&experiments=%5B%2212%22%5D")
    assert _route(url)[0] == "/compare-runs"
    assert _compare_page_reads(url) == (TRIALS, ["12"])


@pytest.mark.parametrize(("uri", "address"), [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
    ("https://alice:s3cret@mlflow.example.com", "https://mlflow.example.com"),
    ("https://TOKEN123@mlflow.example.com:8443/team/mlflow/",
     "https://mlflow.example.com:8443/team/mlflow"),
    ("HTTPS://mlflow.example.com/?password=x#frag", "https://mlflow.example.com"),
])
def test_a_servers_links_open_its_own_ui_without_credentials(uri: str, address: str) -> None:
    links = sweep_links(uri, "3", PARENT, TRIALS, metric=METRIC)
    assert links is not None and not links.local and links.store is None
    assert links.address == server_address(uri) == address
    for url in (links.runs, links.compare):
        assert url.startswith(address + "/#/")
        assert not re.search(r"s3cret|TOKEN123|password", url), url
    assert _compare_page_reads(links.compare) == (TRIALS, ["3"])
    assert _runs_page_reads(links.runs)["searchFilter"] == f"tags.mlflow.parentRunId = '{PARENT}'"


def test_a_local_stores_links_point_at_the_ui_that_serves_it() -> None:
    default = sweep_links("sqlite:////work/runs/mlflow.db", "1", PARENT, TRIALS, metric=METRIC)
    assert default is not None and default.local
    assert default.address == LOCAL_UI_ADDRESS == "http://127.0.0.1:5000"  # mlflow ui's own
    assert default.store == "sqlite:////work/runs/mlflow.db"
    served = sweep_links("sqlite:////work/runs/mlflow.db", "1", PARENT, TRIALS, metric=METRIC,
                         address="http://127.0.0.1:40123/")
    assert served is not None
    assert served.runs.startswith("http://127.0.0.1:40123/#/experiments/1/runs?")
    assert served.compare.startswith("http://127.0.0.1:40123/#/compare-runs?")
    # everything after the address is the same: a printed link works on either port
    assert served.compare.split("#", 1)[1] == default.compare.split("#", 1)[1]
    # a database store's password is never shown, in the links or in the command to serve it
    database = sweep_links("postgresql://mlflow:pw@db:5432/mlflow", "1", PARENT, TRIALS)
    assert database is not None and database.store == "postgresql://mlflow:***@db:5432/mlflow"
    assert "pw" not in "".join([database.runs, database.compare, *database.markdown()])


def test_no_links_for_a_store_whose_ui_is_elsewhere() -> None:
    assert sweep_links("databricks", "1", PARENT, TRIALS) is None
    assert sweep_links("databricks://profile", "1", PARENT, TRIALS) is None


@pytest.mark.parametrize(("uri", "local"), [
    ("sqlite:///mlflow.db", True), ("sqlite:////abs/mlflow.db", True), ("mlruns", True),
    ("/data/mlruns", True), ("file:///data/mlruns", True), ("mysql+pymysql://u@h/db", True),
    ("postgresql://db/mlflow", True), ("http://h:5000", False), ("https://h", False),
    ("databricks", False), ("databricks-uc", False), ("databricks://p", False),
])
def test_which_stores_mlflow_ui_serves_from_here(uri: str, local: bool) -> None:
    assert is_local_store(uri) is local


def test_the_report_section_lists_both_links_and_says_how_to_open_a_local_store() -> None:
    local = sweep_links("sqlite:////w/mlflow.db", "1", PARENT, TRIALS, metric=METRIC)
    assert isinstance(local, SweepLinks)
    text = "\n".join(local.markdown())
    assert text.startswith("## The trials in the MLflow UI\n")
    assert f"]({local.runs})" in text and f"]({local.compare})" in text
    assert "seedgrpo-report SWEEP_DIR --ui" in text
    assert "mlflow ui --backend-store-uri sqlite:////w/mlflow.db" in text
    remote = sweep_links("https://u:pw@mlflow.example.com", "1", PARENT, TRIALS)
    assert remote is not None
    assert "--ui" not in "\n".join(remote.markdown())
    assert local.console() == [f"  trials:  {local.runs}", f"  compare: {local.compare}"]


def _bundle_text() -> str:
    if not BUNDLE.is_dir():  # pragma: no cover - an MLflow installed without its UI
        pytest.fail(f"no MLflow UI bundle at {BUNDLE}")
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in BUNDLE.glob("*.js"))


def test_the_installed_mlflow_ui_reads_these_routes_and_parameters() -> None:
    """MLflow 3.17.2's bundle: how its own code builds the compare link and which query
    parameters the runs page takes (minified names aside, these strings are its source's)."""
    js = _bundle_text()
    # Routes.getCompareRunPageRoute(runUuids, experimentIds): JSON arrays in runs/experiments
    assert "?runs=${JSON.stringify(e)}&experiments=${JSON.stringify(t)}" in js
    assert 'compareRuns(){return' in js and '("/compare-runs")' in js
    # the compare page decodes its query and JSON.parses "?runs" and "experiments"
    assert 'JSON.parse(n["?runs"])' in js and "JSON.parse(n.experiments)" in js
    # the runs page's search facets come from the query string, searchFilter first
    assert '["searchFilter","orderByKey","orderByAsc",' in js
    assert ('orderByAsc:{serializeQueryString:e=>e.toString(),'
            'deserializeQueryString:e=>"true"===e}') in js
    # the model-training view, and the metric sort key `metrics.` + "`name`"
    assert 'MACHINE_LEARNING="machine_learning"' in js and '.get("workflowType")' in js
    assert 'e+".`"+t+"`"' in js
    assert 'experimentPageTabRuns(){return' in js and '("/experiments/:experimentId/runs")' in js
