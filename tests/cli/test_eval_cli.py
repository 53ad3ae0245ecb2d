"""seedgrpo-eval run as a user would: real engines, real math-verify, real data, real MLflow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("seedgrpo-eval", path=str(Path(sys.executable).parent))


def run_eval(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT, "seedgrpo-eval is not installed in this environment (pip install -e .)"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


@pytest.mark.slow
def test_eval_tiny_model_prints_table_writes_files_and_logs(tmp_path: Path, model_cache: Path,
                                                            shared_data: Path) -> None:
    out = run_eval("--model", "tiny-random:tiny-llama", "--cache-dir", str(model_cache),
                   "--benchmarks", "amc23,math500", "--limit", "2", "--engine", "hf",
                   "--max-new-tokens", "8", "--samples", "2", "--temperature", "1.0",
                   "--data-dir", str(shared_data), "--output-dir", str(tmp_path / "ev"),
                   "--mlflow-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout.splitlines()
    assert any(line.split()[:2] == ["amc23", "2"] for line in table)
    assert any(line.startswith("average") for line in table)
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["problems"] == {"amc23": 2, "math500": 2}
    assert {"eval/amc23/pass_at_2", "eval/math500/maj_at_2", "eval/avg/pass_at_1"} <= set(
        summary["metrics"])
    rows = [json.loads(x) for x in (tmp_path / "ev" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 8  # 2 benchmarks x 2 problems x 2 samples
    assert {"problem", "completion", "answer", "gold", "correct"} <= set(rows[0])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run_info,) = client.search_runs(
        [client.get_experiment_by_name("seedgrpo-eval").experiment_id])
    assert "eval/avg/pass_at_1" in run_info.data.metrics
    assert {a.path for a in client.list_artifacts(run_info.info.run_id)} >= {
        "summary.json", "samples.jsonl"}


@pytest.mark.parametrize(("args", "message"), [
    (["--benchmarks", "gsm8k"], "unknown benchmark(s) gsm8k"),
    (["--benchmarks", "heldout"], "held-out split"),
    (["--samples", "4"], "eval.samples > 1 needs eval.temperature > 0"),
    (["--model", "bundled:gpt-5"], "unknown bundled model 'gpt-5'"),
    (["--model", "./no/such/dir"], "no such directory"),
    (["--limit", "0"], "greater than or equal to 1"),
    (["--max-seq-len", "8"], "leaves no room for a prompt"),
])
def test_eval_bad_input_is_a_message(tmp_path: Path, shared_data: Path, args, message) -> None:
    base = {"--model": "tiny-random:tiny-llama", "--benchmarks": "amc23",
            "--data-dir": str(shared_data)}
    rest = []
    for flag in args[::2]:
        base.pop(flag, None)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        rest += [flag, value]
    argv = [x for kv in base.items() for x in kv] + rest
    out = run_eval(*argv, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr and "Traceback" not in out.stderr


def test_eval_missing_data_names_benchmark_and_place(tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "SEEDGRPO_DATA_DIR"}
    out = run_eval("--model", "tiny-random:tiny-llama", "--benchmarks", "aime24", cwd=tmp_path,
                   env=env)
    assert out.returncode == 2
    assert "benchmark 'aime24': no data directory" in out.stderr
    assert "SEEDGRPO_DATA_DIR" in out.stderr and "aime24.jsonl" in out.stderr
    out = run_eval("--model", "tiny-random:tiny-llama", "--benchmarks", "aime24",
                   "--data-dir", str(tmp_path), cwd=tmp_path, env=env)
    assert out.returncode == 2 and f"{tmp_path}/aime24.jsonl does not exist" in out.stderr
