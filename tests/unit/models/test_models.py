"""Model sources: tiny random (no download), the bundled SmolLM2 GGUF, local HF directories."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from seedgrpo.config.sections import ModelConfig
from seedgrpo.models import ModelLoadError, load_causal_lm, load_tokenizer, resolve_model_dir
from seedgrpo.models.bundled import find_bundled_gguf
from seedgrpo.models.cache import build_once


def test_tiny_model_builds_without_download(tmp_path: Path) -> None:
    cfg = ModelConfig(source="tiny-random", name="tiny-llama", cache_dir=str(tmp_path))
    model_dir = resolve_model_dir(cfg)
    tokenizer = load_tokenizer(model_dir)
    text = "Héllo \\boxed{1/2} ✓"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: lossless
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                           add_generation_prompt=True, tokenize=False)
    assert prompt == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    model = load_causal_lm(model_dir)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_tiny_model_is_the_same_in_every_cache(tmp_path: Path) -> None:
    import torch

    a = load_causal_lm(resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                                     cache_dir=str(tmp_path / "a"))))
    b = load_causal_lm(resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                                     cache_dir=str(tmp_path / "b"))))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name


def _slow_build(target: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as fh:
            fh.write("built\n")
        time.sleep(1.0)
        (tmp / "weights").write_text("w")

    build_once(Path(target), build)


def test_build_once_builds_once_across_processes(tmp_path: Path) -> None:
    target, log = tmp_path / "model", tmp_path / "log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(target), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert log.read_text() == "built\n"
    assert (target / "weights").read_text() == "w" and (target / ".complete").exists()


def test_bundled_model_converts_once_and_loads(model_cache: Path) -> None:
    cfg = ModelConfig(source="bundled", name="smollm2-135m-instruct", cache_dir=str(model_cache))
    model_dir = resolve_model_dir(cfg)
    assert (model_dir / "model.safetensors").is_file() and (model_dir / ".complete").is_file()
    started = time.monotonic()
    assert resolve_model_dir(cfg) == model_dir  # second call: already converted
    assert time.monotonic() - started < 5.0
    model = load_causal_lm(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    assert 134_000_000 < n_params < 135_000_000  # SmolLM2-135M: 134.5 M
    tokenizer = load_tokenizer(model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "2+2?"}],
                                           add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_missing_bundled_file_says_how_to_get_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEEDGRPO_SMOLLM2_GGUF", str(tmp_path / "nope.gguf"))
    with pytest.raises(FileNotFoundError, match="SEEDGRPO_SMOLLM2_GGUF points at"):
        find_bundled_gguf("smollm2-135m-instruct")
    with pytest.raises(ModelLoadError, match="bundled:smollm2-135m-instruct could not be loaded"):
        resolve_model_dir(ModelConfig(source="bundled", cache_dir=str(tmp_path)))


def test_hf_source_takes_a_local_directory(tmp_path: Path) -> None:
    tiny = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                         cache_dir=str(tmp_path)))
    assert resolve_model_dir(ModelConfig(source="hf", name=str(tiny))) == tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="directory without config.json"):
        resolve_model_dir(ModelConfig(source="hf", name=str(empty)))
