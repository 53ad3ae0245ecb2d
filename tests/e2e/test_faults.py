"""Injected faults, through the real CLI: real processes killed mid-work, and a sweep stopped.

One trial of the tiny model, checkpointed every 5 steps. ``kill -9`` of a learner rank in its
training step, of the rollout actor while it generates (the HF engine: vLLM's engine core is
its child and would cost a minute per restart on 2 cores), of the scorer while it scores, and of
the trial's driver (Tune's trainable) mid-step, one after another in the same sweep: the trial
retries from its last checkpoint each time and finishes, with one MLflow child run and one value
per metric and step. The same for vLLM's engine-core process, killed under a generating
rollout actor, in a short sweep of its own. Ctrl-C (SIGINT to the CLI's process group, as a
terminal sends it) and SIGTERM (to the CLI, as ``kill`` sends it): the sweep, its parent run
and its unfinished child run are marked interrupted (KILLED), the report says so, the exact
resume command is printed, and that command finishes the sweep without a duplicate.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from .conftest import script, sweep_runs, write_experiment
from .processes import in_session, process_title, ray_workers, wait_until

# whole sweeps with restarts: minutes on 2 loaded cores, past the suite's 300 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STEPS = 80
ONE_TRIAL = """
tune: {metric: eval/heldout/pass_at_1, max_failures: 6}
"""
# evaluation only at the end: a step is then a fraction of a second, and a kill lands in one
SETS = ["--set", "train.checkpoint_every=5", "--set", f"eval.every_steps={STEPS}"]
TRIAL = "base"  # the trial's name: nothing is varied


def _start(experiment: Path, *args: str) -> subprocess.Popen[str]:
    """The sweep CLI in a session of its own (its process group is what a terminal signals)."""
    return subprocess.Popen([script("seedgrpo-sweep"), str(experiment), *args],
                            cwd=experiment.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _logged_step(root: Path) -> int:
    """The last step the trial logged to MLflow (kept in its directory, -1: none yet)."""
    for state in root.glob(f"*/trials/{TRIAL}/mlflow_run.json"):
        try:
            return int(json.loads(state.read_text())["logged_step"])
        except (OSError, ValueError, KeyError):
            return -1
    return -1


def _sweep_dir(root: Path) -> Path:
    return root / (root / "latest").read_text().strip()


def _assert_one_child_one_value_per_step(uri: str, experiment: str, last_step: int = STEPS
                                         ) -> None:
    client, _, parents, children = sweep_runs(uri, experiment)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 1, [r.info.run_name for r in children]
    child = children[0]
    assert child.info.status == "FINISHED"
    for key in child.data.metrics:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
        assert steps == sorted(set(steps)), f"{key}: a step logged twice: {steps}"
        if key.startswith("train/"):
            assert steps == list(range(1, last_step + 1)), f"{key}: {steps}"


def _itself(proc: psutil.Process) -> psutil.Process:
    return proc


def _engine_core(proc: psutil.Process) -> psutil.Process:
    """vLLM's engine-core process under a rollout actor (vLLM titles it ``VLLM::EngineCore``;
    its model runs in a ``VLLM::Worker`` below it)."""
    cores = [p for p in proc.children(recursive=True) if p.name() == "VLLM::EngineCore"]
    assert len(cores) == 1, [(p.pid, p.name()) for p in proc.children(recursive=True)]
    return cores[0]


def _kill_mid(cli: subprocess.Popen[str], root: Path, actor: str, method: str,
              after_step: int, victim: Callable[[psutil.Process], psutil.Process] = _itself
              ) -> tuple[str, int]:
    """SIGKILL the trial's ``actor`` process (or the ``victim`` process of it) while the actor
    runs ``method``, once the trial has logged ``after_step``; returns the actor's title at the
    kill and the step it was at."""
    def reached() -> bool:
        assert cli.poll() is None, "the sweep ended before the kill"
        return _logged_step(root) >= after_step

    wait_until(reached, 400, f"step {after_step}", interval=0.05)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for proc in ray_workers(cli.pid, actor):
            target = victim(proc)
            for _ in range(4000):  # ~20 s of a 5 ms poll: the method runs once per step
                title = process_title(proc)
                if title.startswith(f"ray::{actor}.{method}"):
                    step = _logged_step(root)
                    target.send_signal(signal.SIGKILL)
                    return title, step
                if not title:
                    break
                time.sleep(0.005)
        assert cli.poll() is None, "the sweep ended before the kill"
        time.sleep(0.05)
    raise AssertionError(f"never saw ray::{actor}.{method} running")


Kill = tuple[str, str, int, Callable[[psutil.Process], psutil.Process]]


def _sweep_surviving(tmp_path: Path, model_cache: Path, name: str, steps: int,
                     sets: list[str], kills: list[Kill]) -> str:
    """A one-trial sweep of ``steps``, each of ``kills`` (actor, method, after which logged
    step, which process of the actor) dealt in turn: the sweep exits 0 and its trial finishes,
    each kill a failure Tune recorded and retried, one MLflow child run, one value per metric
    and step. Returns the trial's error file (each failure's traceback)."""
    experiment = write_experiment(tmp_path, name, model_cache, ONE_TRIAL, steps=steps)
    root = tmp_path / "runs" / name
    cli = _start(experiment, *sets)
    done = []
    try:
        for actor, method, step, victim in kills:
            done.append(_kill_mid(cli, root, actor, method, step, victim))
        stdout, stderr = cli.communicate(timeout=600)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.communicate()
    assert cli.returncode == 0, stdout[-3000:] + stderr[-5000:]
    assert [title.split(".")[0] for title, _ in done] == [f"ray::{k[0]}" for k in kills]
    assert [s for _, s in done] == sorted(s for _, s in done), done  # each at a later step
    # each kill was a failure Tune saw and retried, and the trial then finished
    assert stdout.count("RETRYING") == len(kills), stdout[-3000:]
    sweep_dir = _sweep_dir(root)
    errors = (sweep_dir / "tune" / TRIAL / "error.txt").read_text()
    assert errors.count("Failure #") == len(kills), errors[-3000:]
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "FINISHED"
    assert json.loads((sweep_dir / "trials" / TRIAL / "result.json").read_text())[
        "step"] == steps
    _assert_one_child_one_value_per_step(f"sqlite:///{tmp_path / 'mlflow.db'}", name, steps)
    return errors


def test_each_killed_process_is_retried_from_its_checkpoint(tmp_path: Path,
                                                            model_cache: Path) -> None:
    kills = [("LearnerActor", "train", 8, _itself), ("RolloutActor", "generate", 24, _itself),
             ("ScorerActor", "score", 40, _itself),
             ("ResourceTrainable", "train", 56, _itself)]
    _sweep_surviving(tmp_path, model_cache, "tiny_faults", STEPS, SETS, kills)


VLLM_STEPS = 8  # every vLLM start is most of a minute on 2 cores: two here (the retry's)


def test_killed_vllm_engine_core_fails_the_generation_and_is_retried(
        tmp_path: Path, model_cache: Path) -> None:
    """vLLM's synchronous client leaves a generation waiting on a dead engine core (until
    ``resources.call_timeout_s``, then a timeout that names nothing); the engine notices the
    process end, the generation raises at once, naming it, and Tune retries."""
    sets = ["--set", "rollout.engine=vllm", "--set", "train.checkpoint_every=2",
            "--set", f"eval.every_steps={VLLM_STEPS}"]
    errors = _sweep_surviving(tmp_path, model_cache, "tiny_vllm_fault", VLLM_STEPS, sets,
                              [("RolloutActor", "generate", 3, _engine_core)])
    # the failure names what ended and how, in one line
    assert "EngineDied: vLLM's engine-core process EngineCore (pid " in errors, errors[-3000:]
    assert ") was killed by SIGKILL; " in errors


def _interrupt_at(experiment: Path, root: Path, step: int, send
                  ) -> tuple[int, str, str, int]:
    cli = _start(experiment, *SETS)
    try:
        def reached() -> bool:
            assert cli.poll() is None, "the sweep ended before the interrupt"
            return _logged_step(root) >= step

        wait_until(reached, 400, f"step {step}", interval=0.05)
        send(cli)
        stdout, stderr = cli.communicate(timeout=180)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.communicate()
    return cli.returncode, stdout, stderr, cli.pid


def _assert_marked_interrupted(experiment: Path, root: Path, stdout: str, stderr: str) -> str:
    """The sweep, its parent run and its unfinished child KILLED, the report headed
    "interrupted", no native stack dump; returns the printed resume command."""
    assert "*** SIGTERM received" not in stdout + stderr and "Traceback" not in stderr, stderr
    assert "sweep finished" not in stdout
    sweep_dir = _sweep_dir(root)
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "INTERRUPTED"
    _, _, parents, children = sweep_runs(f"sqlite:///{experiment.parent / 'mlflow.db'}", root.name)
    assert [r.info.status for r in parents] == ["KILLED"]
    assert [r.info.status for r in children] == ["KILLED"]
    report = (sweep_dir / "report" / "report.md").read_text()
    assert report.startswith("# Sweep report: interrupted at "), report[:300]
    assert "0 of 1 trials finished" in report.splitlines()[0]
    assert "No artists with labels" not in stderr
    lines = stderr.splitlines()
    command = lines[lines.index("interrupted: finished trials and checkpoints are kept; "
                                "continue with:") + 1].strip()
    assert command == shlex.join(["seedgrpo-sweep", str(experiment), *SETS, "--resume",
                                  str(sweep_dir)])
    assert command in report
    return command


def test_ctrl_c_marks_the_sweep_interrupted_and_its_resume_command_finishes_it(
        tmp_path: Path, model_cache: Path) -> None:
    experiment = write_experiment(tmp_path, "tiny_ctrl_c", model_cache, ONE_TRIAL, steps=STEPS)
    root = tmp_path / "runs" / "tiny_ctrl_c"
    # a terminal's Ctrl-C: SIGINT to the whole foreground process group (Ray's own too)
    code, stdout, stderr, _ = _interrupt_at(experiment, root, 23,
                                            lambda cli: os.killpg(cli.pid, signal.SIGINT))
    assert code == 130, stdout[-2000:] + stderr[-4000:]
    command = _assert_marked_interrupted(experiment, root, stdout, stderr)

    # the printed command, as printed (only the script's own path made explicit)
    out = subprocess.run([script("seedgrpo-sweep"), *shlex.split(command)[1:]],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    assert f"resuming sweep {_sweep_dir(root)}" in out.stdout
    assert json.loads((_sweep_dir(root) / "sweep.json").read_text())["status"] == "FINISHED"
    assert not (_sweep_dir(root) / "report" / "report.md").read_text().startswith(
        "# Sweep report: interrupted")
    _assert_one_child_one_value_per_step(f"sqlite:///{tmp_path / 'mlflow.db'}", "tiny_ctrl_c")


def test_sigterm_stops_the_sweep_as_ctrl_c_does(tmp_path: Path, model_cache: Path) -> None:
    experiment = write_experiment(tmp_path, "tiny_sigterm", model_cache, ONE_TRIAL,
                                  steps=STEPS)
    root = tmp_path / "runs" / "tiny_sigterm"
    code, stdout, stderr, pid = _interrupt_at(experiment, root, 23,
                                              lambda cli: os.kill(cli.pid, signal.SIGTERM))
    assert code == 143, stdout[-2000:] + stderr[-4000:]
    _assert_marked_interrupted(experiment, root, stdout, stderr)
    # the sweep stopped its own Ray: nothing of its session is left running
    wait_until(lambda: not in_session(pid), 30, "the sweep's Ray processes gone")
