"""Hostile experiment files and ``--set`` values, through the real ``seedgrpo-sweep --dry-run``.

Issue 15 (findings 2, 4, 5, 9): each input below once stalled the CLI for minutes, printed
megabytes, ran something silently wrong, or named a directory outside the sweep. Each must
now end quickly with exit status 2 and one bounded line on stderr naming the problem. The
30 s subprocess timeout is the failure condition, not a timing assertion.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_sweep_cli import SWEEP

MAX_ERROR_BYTES = 500
MINIMAL = "model: {source: tiny-random, name: tiny-llama}\n"
TIMEOUT_S = 30


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SWEEP, "seedgrpo-sweep is not installed in this environment (pip install -e .)"
    return subprocess.run([SWEEP, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=TIMEOUT_S)


def assert_refused(out: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 2, nothing on stdout, exactly one short line on stderr that says ``expected``."""
    assert out.returncode == 2, (out.returncode, out.stdout[:300], out.stderr[:300])
    assert out.stdout == ""
    assert len(out.stderr.encode()) < MAX_ERROR_BYTES, out.stderr[:600]
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: "), out.stderr
    assert expected in out.stderr, out.stderr


def _laughs(levels: int, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _grid_bomb() -> str:
    """Six levels of ten aliases as the values of one grid (unbounded, this once printed 28 MB
    of stderr)."""
    values = ["&x0 [" + ", ".join(["heldout"] * 10) + "]"]
    values += [f"&x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 6)]
    return MINIMAL + "search_space:\n  eval.benchmarks: {grid: [" + ", ".join(values) + "]}\n"


def _binary(tmp_path: Path) -> str:
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"\xff\xfe\x00model")
    return str(path)


def _fifo(tmp_path: Path) -> str:
    path = tmp_path / "exp.yaml"
    os.mkfifo(path)
    return str(path)


def _file(text: str, name: str = "exp.yaml") -> Callable[[Path], str]:
    def make(tmp_path: Path) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return make


# case -> (make the experiment file in tmp_path, extra CLI args, what stderr must say)
HOSTILE: dict[str, tuple[Callable[[Path], str], list[str], str]] = {
    "billion laughs, 9 levels": (_file(_laughs(9)), [], "values once its YAML aliases"),
    "alias bomb inside a grid": (_file(_grid_bomb()), [], "values once its YAML aliases"),
    "2 MB of comments": (_file("# padding\n" * 200_000), [], "a config file is at most"),
    "2 MB scalar": (_file("model: {source: bundled, name: " + "x" * 2_000_000 + "}\n"), [],
                    "a config file is at most"),
    "900 kB scalar": (_file("model: {source: bundled, name: " + "x" * 900_000 + "}\n"), [],
                      "is not a bundled model"),
    "900 kB unknown key": (_file("train:\n  ? " + "k" * 900_000 + "\n  : 1\n"), [], "unknown key"),
    "5000-digit number": (_file("train: {steps: " + "9" * 5000 + "}\n"), [],
                          "a number too long to read"),
    "FIFO": (_fifo, [], "is a FIFO (named pipe), not a YAML file"),
    "character device": (lambda _: "/dev/null", [], "is a character device, not a YAML file"),
    "directory": (lambda tmp_path: str(tmp_path), [], "is a directory, not a YAML file"),
    "empty file": (_file(""), [], "is empty; a minimal experiment file is"),
    "comments only": (_file("# nothing here\n"), [], "is empty; a minimal experiment file is"),
    "binary file": (_binary, [], "is not UTF-8 text"),
    "duplicate grid value": (_file(MINIMAL + "search_space:\n  algorithm.alpha: "
                                   "{grid: [0.5, 1.0, 0.5]}\n"), [], "grid lists 0.5 twice"),
    "duplicate grid value 1 and 1.0": (_file(MINIMAL + "search_space:\n  algorithm.alpha: "
                                             "{grid: [1, 1.0]}\n"), [], "grid lists 1.0 twice"),
    "repeated --set": (_file(MINIMAL), ["--set", "algorithm.alpha=1", "--set",
                                        "algorithm.alpha=2"],
                       "--set algorithm.alpha=2: algorithm.alpha: is also set by --set "
                       "algorithm.alpha=1; give each key once"),
    "--set alias bomb": (_file(MINIMAL), ["--set", "search_space=" + _laughs(8).replace(
        "\n", ", ").join("{}")], "the value holds"),
    "--set 5000-digit number": (_file(MINIMAL), ["--set", "train.steps=" + "9" * 5000],
                                "a number too long to read"),
    "--set num_workers 1e8": (_file(MINIMAL), ["--set", "rollout.num_workers=100000000"],
                              "rollout.num_workers = 100000000 must be <= 1024"),
    "huge group_size": (_file(MINIMAL + "algorithm: {group_size: 100000000}\n"), [],
                        "must be <= 1024"),
    "huge grid": (_file(MINIMAL + "search_space:\n  train.seed: {grid: ["
                        + ", ".join(map(str, range(50_000))) + "]}\n"), [],
                  "grid lists 50,000 values; at most 1,000 per parameter"),
    "negative custom resource": (_file(MINIMAL + "resources: {driver: {custom: {tpu: -1}}}\n"),
                                 [], "custom resource 'tpu' = -1.0 must be >= 0"),
    "custom resource named CPU": (_file(MINIMAL + "resources: {driver: {custom: {CPU: 8}}}\n"),
                                  [], "custom resource 'CPU' is one of Ray's own"),
    "experiment_name ../../etc": (_file(MINIMAL + "tracking: {experiment_name: ../../etc}\n"),
                                  [], "is not a safe name"),
    "experiment_name with NUL": (_file(MINIMAL + 'tracking: {experiment_name: "a\\0b"}\n'), [],
                                 "is not a safe name"),
    "output_dir with NUL": (_file(MINIMAL + 'tracking: {output_dir: "runs\\0/x"}\n'), [],
                            "holds a control character"),
    "output_dir ../../etc": (_file(MINIMAL + "tracking: {output_dir: ../../etc}\n"), [],
                             "contains '..'"),
    "--set output_dir runs/../..": (_file(MINIMAL), ["--set", "tracking.output_dir=runs/../.."],
                                    "contains '..'"),
    "implausible model.revision": (_file("model: {source: hf, name: org/m, revision: "
                                         "'main; rm -rf /'}\n"), [], "is not a git revision"),
    "revision of a bundled model": (_file("model: {revision: main}\n"), [],
                                    "model.revision applies to source hf"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_input_is_refused_fast_in_one_short_line(tmp_path: Path, case: str) -> None:
    make, args, expected = HOSTILE[case]
    out = sweep(make(tmp_path), "--dry-run", *args, cwd=tmp_path)
    assert_refused(out, expected)


def test_search_space_file_planted_above_the_project_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces/alpha.yaml").write_text("algorithm.alpha: {grid: [0.1, 1.0]}\n")
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    exp = project / "experiments/exp.yaml"
    exp.write_text(MINIMAL + "search_space: search_spaces/alpha.yaml\n")
    out = sweep(str(exp), "--dry-run", cwd=project)
    assert_refused(out, "file 'search_spaces/alpha.yaml' not found")
    (project / "search_spaces").mkdir()  # the project's own copy is found
    (project / "search_spaces/alpha.yaml").write_text("algorithm.alpha: {grid: [0.1, 1.0]}\n")
    assert sweep(str(exp), "--dry-run", cwd=project).returncode == 0


SLUG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def test_trial_names_from_paths_and_hub_ids_are_safe_unique_slugs(tmp_path: Path) -> None:
    names = ["Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B", "../../../../tmp/evil", "./local/..",
             "a b/c:d", "/abs/models/tiny"]
    exp = tmp_path / "exp.yaml"
    exp.write_text("model: {source: hf}\nsearch_space:\n  model.name: {grid: "
                   + json.dumps(names) + "}\n")
    first = sweep(str(exp), "--dry-run", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    trials = json.loads(first.stdout)
    got = [t["name"] for t in trials]
    assert all(SLUG.match(n) and len(n) <= 120 for n in got), got
    assert len(set(got)) == len(got) == len(names)
    assert got[0].startswith("Qwen2.5-0.5B-") and got[1].startswith("Qwen2.5-1.5B-")
    again = json.loads(sweep(str(exp), "--dry-run", "--json", cwd=tmp_path).stdout)
    assert [t["name"] for t in again] == got  # stable: resume finds the same trials
    table = sweep(str(exp), "--dry-run", cwd=tmp_path)
    assert table.returncode == 0 and got[0] in table.stdout


def test_dry_run_never_prints_tracking_credentials(tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(MINIMAL + "tracking: {mlflow_uri: 'postgresql://mlflow:s3cr3t@db/mlflow"
                             "?password=t0ken'}\nsearch_space:\n"
                             "  algorithm.alpha: {grid: [0.1, 1.0]}\n")
    for args in (["--json"], []):
        out = sweep(str(exp), "--dry-run", *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "s3cr3t" not in out.stdout + out.stderr
        assert "t0ken" not in out.stdout + out.stderr
    trials = json.loads(sweep(str(exp), "--dry-run", "--json", cwd=tmp_path).stdout)
    assert trials[0]["config"]["tracking"]["mlflow_uri"].startswith("postgresql://mlflow:***@db")


@pytest.mark.slow
def test_a_large_grid_lists_with_output_linear_in_trials(tmp_path: Path) -> None:
    """Finding 5: a grid near the trial limit lists in seconds; --json bytes per trial stay
    constant (each trial once carried the whole search space: quadratic output)."""

    def json_bytes(trials: int) -> int:
        exp = tmp_path / f"exp{trials}.yaml"
        side = trials // 10
        exp.write_text(MINIMAL + "search_space:\n"
                       f"  train.seed: {{grid: {list(range(side))}}}\n"
                       f"  train.steps: {{grid: {list(range(1, 11))}}}\n")
        out = sweep(str(exp), "--dry-run", "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr[:500]
        assert len(json.loads(out.stdout)) == trials
        return len(out.stdout.encode())

    small, large = json_bytes(100), json_bytes(9_990)
    per_small, per_large = small / 100, large / 9_990
    assert per_large < 1.1 * per_small, (per_small, per_large)
    assert per_large < 10_000  # a full trial config, not the search space again
    table = sweep(str(tmp_path / "exp9990.yaml"), "--dry-run", cwd=tmp_path)
    assert table.returncode == 0 and table.stdout.rstrip().endswith("9990 trials")
