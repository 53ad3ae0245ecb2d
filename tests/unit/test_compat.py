"""seedgrpo._compat against the installed DeepSpeed and Ray, and the rule that it alone uses
their private names (so a library upgrade that moves one breaks in one place)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seedgrpo import _compat

REPO = Path(__file__).resolve().parents[2]
PRIVATE_NAMES = ("_local_tuner", "_internal_kv_get", "_zero3_consolidated_16bit_state_dict",
                 "build_shm_op", "outputs_queue", "utility_results", "engine_manager",
                 "EngineDeadError")


def test_only_compat_uses_the_private_library_names() -> None:
    pattern = re.compile(r"\b(" + "|".join(PRIVATE_NAMES) + r")\b")
    allowed = {REPO / "platform" / "seedgrpo" / "_compat.py", Path(__file__).resolve()}
    offenders = []
    for root in (REPO / "platform", REPO / "tests"):
        for path in sorted(root.rglob("*.py")):
            if path.resolve() in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "use seedgrpo._compat instead:\n" + "\n".join(offenders)


def test_compat_imports_no_heavy_library_at_import_time() -> None:
    code = ("import sys, seedgrpo._compat; "
            "print(sorted(m for m in ('deepspeed', 'ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_skip_deepspeed_shm_build_makes_the_builder_a_no_op(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import deepspeed.comm.torch  # noqa: F401

    module = sys.modules["deepspeed.comm.torch"]
    original = module.build_shm_op
    monkeypatch.setattr(module, "build_shm_op", original)  # restored after the test
    _compat.skip_deepspeed_shm_build()
    assert module.build_shm_op is not original
    assert module.build_shm_op() is None


def test_tuner_run_config_is_the_live_run_config_of_a_real_tuner(tmp_path: Path) -> None:
    from ray import tune

    class Marker(tune.Callback):
        pass

    marker = Marker()
    tuner = tune.Tuner(lambda config: None,
                       run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[marker]))
    run_config = _compat.tuner_run_config(tuner)
    assert isinstance(run_config, tune.RunConfig)
    assert run_config.callbacks == [marker]
    run_config.callbacks = []  # changed in place: the tuner sees it
    assert _compat.tuner_run_config(tuner).callbacks == []


@pytest.mark.slow
def test_ray_autoscaling_status_reads_a_local_heads_monitor_report() -> None:
    import ray

    from seedgrpo.sweep.cluster import readonly_autoscaler

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        deadline = time.monotonic() + 60
        status = _compat.ray_autoscaling_status()
        assert status is None or isinstance(status, bytes)
        # the monitor's first report lacks the autoscaler part; wait until it has it
        while time.monotonic() < deadline and (
                status is None or "autoscaler_report" not in json.loads(status)):
            time.sleep(0.5)
            status = _compat.ray_autoscaling_status()
        assert isinstance(status, bytes)
        # a head started without a cluster config mirrors its nodes: read-only, no autoscaler
        assert readonly_autoscaler(json.loads(status))
    finally:
        if started:
            ray.shutdown()


_ZERO3_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch, deepspeed
    from seedgrpo._compat import skip_deepspeed_shm_build, zero3_full_state_dict

    skip_deepspeed_shm_build()
    deepspeed.init_distributed(dist_backend="gloo")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    expected = {k: v.flatten().tolist() for k, v in model.state_dict().items()}
    engine, *_ = deepspeed.initialize(model=model, config={
        "train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3},
        "optimizer": {"type": "AdamW", "params": {"lr": 0.1, "torch_adam": True}}})
    assert model.weight.numel() == 0, "ZeRO-3 did not partition the weights"
    state = zero3_full_state_dict(engine)
    print(json.dumps({"expected": expected,
                      "gathered": {k: v.float().flatten().tolist() for k, v in state.items()}}))
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_zero3_full_state_dict_gathers_the_partitioned_weights(tmp_path: Path) -> None:
    # a process of its own: DeepSpeed's process group is global state
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "DS_ACCELERATOR": "cpu"}
    done = subprocess.run([sys.executable, "-c", _ZERO3_SCRIPT], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["gathered"]) == {"weight", "bias"}
    for name, values in result["expected"].items():
        assert result["gathered"][name] == pytest.approx(values), name
