"""The MLflow UI as a user reaches it from a sweep: the links the sweep prints, served by
``seedgrpo-report SWEEP_DIR --ui`` or ``seedgrpo-sweep FILE --ui`` (a real ``mlflow ui`` on
127.0.0.1), opened in Debian's headless Chromium driven by Selenium (the Makefile installs both
packages; no browser build is downloaded). No column is chosen and no row expanded: what the
link opens is what is checked.

Slow: it reads the session's finished grid sweep, and runs a one-trial sweep with ``--ui``.
``SEEDGRPO_SCREENSHOT_DIR=docs/images`` keeps the compare page's screenshot for the README
(``mlflow_compare.png``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import BIN, FinishedSweep, script, sweep_runs, write_experiment

# whole sweeps: minutes each on 2 loaded cores, past the suite's 300 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TRIALS = ("none", "linear-a0.25", "linear-a0.5", "linear-a1")  # in the order they ran
ALPHAS = ("n/a", "0.25", "0.5", "1.0")  # the baseline ignores alpha: not applicable
SWEPT = ("algorithm.modulation", "algorithm.alpha")
METRIC = "eval/heldout/pass_at_1"
SCREENSHOT = "mlflow_compare.png"


@dataclass(frozen=True)
class ServedSweep:
    address: str  # where --ui serves the store
    runs: str  # the printed links
    compare: str


def _printed_links(lines: list[str]) -> tuple[str, str]:
    """The runs and compare links among a command's output lines (the last ones printed)."""
    runs = [line.split()[-1] for line in lines if line.startswith("  trials:  ")]
    compare = [line.split()[-1] for line in lines if line.startswith("  compare: ")]
    assert runs and compare, "\n".join(lines[-20:])
    return runs[-1], compare[-1]


def _start_ui(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _served_links(proc: subprocess.Popen[str], timeout: float) -> tuple[list[str], ServedSweep]:
    """Read a ``--ui`` command's output up to its last link: the lines, and where it serves
    what. The command keeps serving (and its stdout keeps being read) until it is stopped."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.rstrip("\n")) for x in proc.stdout]
                     + [lines.put(None)], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not (seen and seen[-1].startswith("  compare: ")):
        line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
        assert line is not None and time.monotonic() < deadline, (
            "\n".join(seen) + (proc.stderr.read() if proc.poll() is not None else ""))
        seen.append(line)
    heading = next(x for x in seen if x.startswith("MLflow UI for "))
    address = re.search(r" at (http://127\.0\.0\.1:\d+) \(Ctrl-C stops it\):$", heading)
    assert address, heading
    return seen, ServedSweep(address[1], *_printed_links(seen))


def _ctrl_c(proc: subprocess.Popen[str]) -> None:
    """Stop a ``--ui`` command as a user does: it must exit 0 without a traceback."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err


def _health(address: str) -> bytes | None:
    """The server's /health answer, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(f"{address}/health", timeout=10) as response:
            return response.read()
    except OSError:
        return None


@pytest.fixture(scope="module")
def served(grid_sweep: FinishedSweep, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServedSweep]:
    """``seedgrpo-report SWEEP_DIR --ui`` as the sweep's last lines say: the UI it starts and
    the links it prints; Ctrl-C at the end stops it (exit status 0)."""
    out_dir = tmp_path_factory.mktemp("report_ui")
    proc = _start_ui([str(BIN / "seedgrpo-report"), str(grid_sweep.sweep_dir), "--ui",
                      "--no-log", "--output", str(out_dir)], grid_sweep.workdir)
    try:
        yield _served_links(proc, timeout=300)[1]
        _ctrl_c(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sweep_ui_serves_its_trials_once_the_sweep_ends_until_ctrl_c(
        tmp_path: Path, model_cache: Path) -> None:
    """``seedgrpo-sweep FILE --ui``: the sweep runs, then its store is served on 127.0.0.1 and
    the links printed point there, at this sweep's trial; Ctrl-C stops the server."""
    experiment = write_experiment(tmp_path, "tiny_ui", model_cache,
                                  f"tune: {{metric: {METRIC}}}\n", steps=1)
    proc = _start_ui([script("seedgrpo-sweep"), str(experiment), "--ui"], tmp_path)
    try:
        seen, served = _served_links(proc, timeout=600)
        assert any(line.startswith("sweep finished: ") for line in seen), "\n".join(seen)
        _, exp, parents, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}",
                                               "tiny_ui")
        assert len(parents) == 1 and len(children) == 1
        assert served.compare == (
            f"{served.address}/#/compare-runs?runs=%5B%22{children[0].info.run_id}%22%5D"
            f"&experiments=%5B%22{exp.experiment_id}%22%5D")
        assert served.runs.startswith(f"{served.address}/#/experiments/{exp.experiment_id}/runs?")
        assert _health(served.address) == b"OK"
        _ctrl_c(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _health(served.address) is None  # the server went with the command


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = ("Debian's chromium and chromium-driver are not installed (make setup "
                   "installs them where apt-get can)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(30)
    yield driver
    driver.quit()


def test_the_sweep_and_its_report_print_the_links_that_are_served(
        grid_sweep: FinishedSweep, served: ServedSweep) -> None:
    """The links at the end of the sweep and in report.md are the ones --ui serves: the same
    views, at mlflow ui's default address (5000) until --ui says which port it took."""
    runs, compare = _printed_links(grid_sweep.stdout.splitlines())
    assert compare.startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    assert runs.split("#", 1)[1] == served.runs.split("#", 1)[1]
    assert compare.split("#", 1)[1] == served.compare.split("#", 1)[1]
    assert served.compare.startswith(served.address + "/#/")
    report = (grid_sweep.sweep_dir / "report" / "report.md").read_text()
    assert f"]({compare})" in report and f"]({runs})" in report


def _eventually(driver, check, what: str, timeout: float = 30.0):
    """``check(driver)``'s first truthy value within ``timeout``. MLflow's pages are React: a
    page draws, then redraws as its data arrives, so an element found a moment ago can be gone
    (stale) and a view can pass through another state (a flat list before the nesting) before
    it settles. What is checked is the state it settles in."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.implicitly_wait(0)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(check, message=what)
    finally:
        driver.implicitly_wait(30)


def _shown(xpath: str):
    from selenium.webdriver.common.by import By

    return lambda driver: driver.find_element(By.XPATH, xpath).is_displayed()


def _gone(xpath: str):
    from selenium.webdriver.common.by import By

    return lambda driver: not driver.find_elements(By.XPATH, xpath)


def _absent(driver, xpath: str) -> bool:
    """No element at ``xpath`` (asked once the page has drawn what it shows, without waiting
    out the implicit wait)."""
    from selenium.webdriver.common.by import By

    driver.implicitly_wait(0)
    try:
        return not driver.find_elements(By.XPATH, xpath)
    finally:
        driver.implicitly_wait(30)


def _close_assistant(driver) -> None:
    """Close MLflow's assistant side panel where it is open (it stays closed after)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    driver.implicitly_wait(0)
    try:
        for close in driver.find_elements(By.CSS_SELECTOR, "button[aria-label=Close]"):
            with contextlib.suppress(StaleElementReferenceException):  # redrawn: gone anyway
                close.click()
    finally:
        driver.implicitly_wait(30)


def _cells(driver, header: str) -> list[str]:
    """The cells of the compare page's row headed ``header``, one per run, left to right (read
    again when the page redraws the row while it is read)."""
    from selenium.webdriver.common.by import By

    def read(d):
        row = d.find_element(By.XPATH, f"//tr[th[normalize-space(.)='{header}']]")
        return [c.text.strip() for c in row.find_elements(By.XPATH, "./td")]

    return _eventually(driver, read, f"the compare page's row {header!r}")


# The compare page's metrics are two virtualized grids of divs (keys, values), not a table: a
# metric's values are the value cells level with its key, left to right.
_METRIC_CELLS = """
const key = [...document.querySelectorAll("a[title='Plot chart']")]
  .find(a => a.textContent.trim() === arguments[0]);
if (!key) return null;
const row = key.parentElement, own = row.parentElement;
row.scrollIntoView({block: "center"});
const top = row.getBoundingClientRect().top;
return [...document.querySelectorAll(".ReactVirtualized__Grid__innerScrollContainer > div")]
  .filter(c => c.parentElement !== own && Math.abs(c.getBoundingClientRect().top - top) < 2)
  .sort((a, b) => a.getBoundingClientRect().left - b.getBoundingClientRect().left)
  .map(c => c.textContent.trim());
"""


def _metric_cells(driver, key: str) -> list[str] | None:
    """The compare page's values of metric ``key``, one per run (None: no such row)."""
    driver.find_element("xpath", "//a[@title='Plot chart']")  # the metrics are drawn
    driver.execute_script(_METRIC_CELLS, key)  # scrolled to: its row's cells are rendered
    time.sleep(0.5)
    return driver.execute_script(_METRIC_CELLS, key)


def test_the_compare_link_shows_the_trials_side_by_side(grid_sweep: FinishedSweep,
                                                        served: ServedSweep, browser) -> None:
    """The printed compare link, nothing clicked: every trial, the swept parameters and the
    ranking metric, and the `none` baseline without an alpha."""
    from selenium.webdriver.common.by import By

    _, _, _, children = sweep_runs(grid_sweep.uri, "tiny_grid")
    metric = {r.info.run_name: r.data.metrics[METRIC] for r in children}
    browser.get(served.compare)
    browser.find_element(By.XPATH, f"//*[normalize-space(text())='{TRIALS[-1]}']")
    assert _cells(browser, "Run Name:") == list(TRIALS)
    assert _cells(browser, "algorithm.alpha") == list(ALPHAS)
    assert _cells(browser, "algorithm.modulation") == ["none", "linear", "linear", "linear"]
    shown = _metric_cells(browser, METRIC)
    assert shown is not None, f"no {METRIC} row on the compare page"
    assert [float(v) for v in shown] == pytest.approx([metric[name] for name in TRIALS]), shown
    # the parallel-coordinates plot, drawn over the swept parameters
    def axes(driver) -> set[str]:
        return {a.get_attribute("data-unformatted") for a in
                driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot text.axis-title")}

    _eventually(browser, lambda d: set(SWEPT) <= axes(d),
                f"the parallel-coordinates plot has axes {SWEPT}")
    _close_assistant(browser)  # the side panel: the picture is the comparison's
    title = "//*[starts-with(normalize-space(text()), 'Comparing ')]"
    _eventually(browser, lambda d: d.execute_script(  # the top of the page
        "arguments[0].scrollIntoView({block: 'center'}); return true;",
        d.find_element(By.XPATH, title)), "the compare page's title")
    time.sleep(2)  # the plot redraws to the width the panel left
    shot = grid_sweep.workdir / SCREENSHOT
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    target = os.environ.get("SEEDGRPO_SCREENSHOT_DIR")
    if target:  # how the README's screenshot is made
        shutil.copy(shot, Path(target) / SCREENSHOT)


def test_the_runs_link_lists_the_trials_and_the_experiment_nests_them(
        grid_sweep: FinishedSweep, served: ServedSweep, browser) -> None:
    """The printed runs link opens the model-training view with the trials as rows; the
    experiment's unfiltered table keeps them nested under the sweep's one row."""

    browser.get(served.runs)
    _close_assistant(browser)
    for name in TRIALS:
        _eventually(browser, _shown(f"//*[text()='{name}']"), f"trial {name} shown")
    assert _absent(browser, "//*[starts-with(text(), 'sweep-')]")  # the trials only
    experiments = served.runs.split("#/experiments/", 1)[1].split("/", 1)[0]
    # an empty searchFilter: the UI would otherwise restore the last one, the link's
    browser.get(f"{served.address}/#/experiments/{experiments}/runs"
                "?workflowType=machine_learning&searchFilter=")
    _eventually(browser, _shown("//*[starts-with(text(), 'sweep-')]"), "the sweep's row shown")
    _eventually(browser, _gone("//*[text()='linear-a0.5']"), "the trials nested under it")
