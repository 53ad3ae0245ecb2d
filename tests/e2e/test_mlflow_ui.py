"""The MLflow UI, as a user compares a sweep's trials: a real ``mlflow ui`` on 127.0.0.1 and
Debian's headless Chromium driven by Selenium (the Makefile installs both packages; no browser
build is downloaded). Slow: it reads the session's finished grid sweep."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import BIN, FinishedSweep

# whole sweeps: minutes each on 2 loaded cores, past the suite's 300 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HIDDEN = ("Dataset", "Source", "Models")  # attribute columns a sweep leaves empty
COLUMNS = ("algorithm.modulation", "algorithm.alpha", "algorithm.group_size",
           "eval/heldout/pass_at_1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_ui(grid_sweep: FinishedSweep):
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "ui", "--backend-store-uri", grid_sweep.uri, "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mlflow ui did not start: {proc.stderr.read()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
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
                "--window-size=1600,900"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(20)
    yield driver
    driver.quit()


def show_sweep_columns(driver, child: str, columns=COLUMNS) -> None:
    """What a user does: expand the sweep's parent run, pick the param and metric columns."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for close in driver.find_elements(By.CSS_SELECTOR, "button[aria-label=Close]"):
        close.click()  # the assistant side panel
    driver.find_element(By.CSS_SELECTOR,
                        "button[data-component-id*=runnamecellrenderer]").click()
    driver.find_element(By.XPATH, f"//*[text()='{child}']")  # the trials are listed now
    driver.find_element(By.CSS_SELECTOR,
                        "button[data-testid=column-selection-dropdown]").click()
    for column in (*HIDDEN, *columns):  # toggles: hide empty attributes, show the sweep's
        # found again each time: the selector re-renders after every toggle
        search = driver.find_element(By.CSS_SELECTOR, "input[placeholder='Search columns']")
        search.send_keys(Keys.CONTROL, "a")
        search.send_keys(column)
        time.sleep(0.5)
        # the selector highlights the typed text: <span><strong>name</strong></span>
        matches = driver.find_elements(By.XPATH, f"//span[normalize-space(.)='{column}']")
        assert matches, f"no column '{column}' in the column selector"
        matches[-1].click()  # the selector is rendered last (a portal), after the table
    driver.find_element(By.CSS_SELECTOR,
                        "input[placeholder='Search columns']").send_keys(Keys.ESCAPE)
    time.sleep(1)


def test_mlflow_ui_nests_trials_under_the_sweep(grid_sweep: FinishedSweep, mlflow_ui: str,
                                               browser) -> None:
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By

    experiment = MlflowClient(grid_sweep.uri).get_experiment_by_name("tiny_grid")
    browser.get(f"{mlflow_ui}/#/experiments/{experiment.experiment_id}/runs")
    parent = browser.find_element(By.XPATH, "//*[starts-with(text(), 'sweep-')]")
    assert parent.is_displayed()
    # before expanding: the trials are nested, only the parent is a top-level row
    assert not browser.find_elements(By.XPATH, "//*[text()='linear-a0.5']")
    show_sweep_columns(browser, "linear-a0.25")
    table = browser.find_element(By.CSS_SELECTOR, "[role=grid], [role=treegrid]").text
    for name in ("none", "linear-a0.25", "linear-a0.5", "linear-a1"):
        assert name in table.split("\n"), name
    for header in COLUMNS:
        assert header in table, header
    assert "linear" in table and "0.25" in table
    shot = grid_sweep.workdir / "mlflow_ui.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    target = os.environ.get("SEEDGRPO_SCREENSHOT_DIR")
    if target:  # how the README's screenshot is made
        shutil.copy(shot, Path(target) / "mlflow_ui.png")
