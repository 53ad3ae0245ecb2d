"""Turn ``model:`` config into a local model directory that every engine and learner loads.

One directory for everyone (HF generate, vLLM, DeepSpeed ranks): the rollout engine and the
learner then start from byte-identical weights, which the weight-sync tests rely on. The hub is
contacted only when ``model.source`` is ``hf`` and ``model.name`` is not an existing directory;
then ``model.revision`` (a branch, tag or commit) pins what is downloaded, so every trial, rank
and resumed run loads the same weights. Everything else loads from the local directory this
returns, so the revision is applied in exactly one place.
"""

from __future__ import annotations

import logging
from pathlib import Path

from seedgrpo.config.sections import ModelConfig
from seedgrpo.models.bundled import bundled_model_dir
from seedgrpo.models.cache import cache_root
from seedgrpo.models.tiny import tiny_model_dir

__all__ = ["ModelLoadError", "resolve_model_dir", "load_causal_lm", "load_tokenizer"]

logger = logging.getLogger(__name__)

class ModelLoadError(RuntimeError):
    """A model that cannot be found or loaded; the message says what was tried."""


def resolve_model_dir(cfg: ModelConfig) -> Path:
    """Local directory of the configured model (converted or generated into the cache once)."""
    try:
        if cfg.source == "bundled":
            return bundled_model_dir(cfg.name, cfg.cache_dir)
        if cfg.source == "tiny-random":
            return tiny_model_dir(cfg.name, cfg.cache_dir)
        local = Path(cfg.name).expanduser()
        if local.is_dir():
            if not (local / "config.json").is_file():
                raise ModelLoadError(f"model.name {local} is a directory without config.json; "
                                     "point it at a saved HF model or a seedgrpo checkpoint")
            if cfg.revision is not None:
                logger.warning("model.revision %s is ignored: model.name %s is a local "
                               "directory", cfg.revision, local)
            return local
        from huggingface_hub import snapshot_download

        logger.info("downloading %s (revision %s) from the hub", cfg.name,
                    cfg.revision or "default branch")
        return Path(snapshot_download(cfg.name, revision=cfg.revision,
                                      cache_dir=str(cache_root(cfg.cache_dir) / "hub")))
    except ModelLoadError:
        raise
    except Exception as err:  # noqa: BLE001 - every loader failure becomes one clear message
        at = f"@{cfg.revision}" if cfg.revision else ""
        raise ModelLoadError(f"model {cfg.source}:{cfg.name}{at} could not be loaded: "
                             f"{type(err).__name__}: {err}") from err


def load_tokenizer(model_dir: Path):
    """The tokenizer, with left padding (batched generation) and a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(model_dir: Path, *, dtype: str = "float32",
                   gradient_checkpointing: bool = False):
    """The HF causal LM in ``dtype``, in train mode when gradient checkpointing is on."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"loading {model_dir} failed: {type(err).__name__}: {err}") from err
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model
