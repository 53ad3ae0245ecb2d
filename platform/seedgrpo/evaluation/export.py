"""A ``seedgrpo-train`` checkpoint as an HF model directory that any engine can load.

A trial's ``checkpoints/`` holds DeepSpeed state per rank (ZeRO-1/2/3) and ``experiment.json``,
the trial's config. DeepSpeed's own ``zero_to_fp32`` consolidates the partitions on CPU (no
process group needed); the base model named in the config supplies the architecture and the
tokenizer. The export is written once, beside the checkpoint (``<tag>/hf``), and reused.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.models.checkpoint_files import (
    EXPERIMENT_FILE,
    EXPORT_DIR,
    LATEST_FILE,
    read_experiment,
    read_latest,
)
from seedgrpo.models.resolve import (
    ModelLoadError,
    load_causal_lm,
    load_tokenizer,
    resolve_model_dir,
)

__all__ = ["ExportedCheckpoint", "find_checkpoint_root", "export_checkpoint"]

logger = logging.getLogger(__name__)

_DONE = ".seedgrpo-export-done"


@dataclass(frozen=True)
class ExportedCheckpoint:
    model_dir: Path
    tag: str
    config: ExperimentConfig  # the trial's config (its template, its model)


def find_checkpoint_root(path: Path) -> Path | None:
    """The ``checkpoints`` directory for a trial output dir, the directory itself, or a tag
    directory inside it; None when ``path`` is none of these."""
    for candidate in (path, path / "checkpoints", path.parent):
        if (candidate / EXPERIMENT_FILE).is_file() and (candidate / LATEST_FILE).is_file():
            return candidate
    return None


def _checkpoint_config(root: Path) -> ExperimentConfig:
    """The run's config, saved beside its checkpoints. A run that used plug-ins lists them, and
    validating the file imports them: when one is not importable here, say which and how to
    make it so, in one line."""
    try:
        return ExperimentConfig.model_validate(read_experiment(root))
    except ValidationError as err:
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        hint = (" (put the plug-in's directory on PYTHONPATH, e.g. the experiment file's "
                "directory)" if "plugins:" in message else "")
        raise ModelLoadError(f"{root / EXPERIMENT_FILE}: {message}{hint}") from None


def export_checkpoint(path: Path) -> ExportedCheckpoint:
    """Consolidate the checkpoint at ``path`` (its ``latest``, or the tag ``path`` names)."""
    root = find_checkpoint_root(path)
    if root is None:
        raise ModelLoadError(f"{path} is not a seedgrpo-train checkpoint (no {EXPERIMENT_FILE} "
                             "and latest in it, its checkpoints/ or its parent)")
    latest = read_latest(root)
    tag = path.name if path.parent == root and path.is_dir() else (latest[0] if latest else "")
    if not (root / tag).is_dir():
        raise ModelLoadError(f"{root}: checkpoint '{tag}' is missing")
    cfg = _checkpoint_config(root)
    out = root / tag / EXPORT_DIR
    if (out / _DONE).is_file():
        return ExportedCheckpoint(out, tag, cfg)
    import torch
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    logger.info("exporting %s/%s to an HF model directory", root, tag)
    base = resolve_model_dir(cfg.model)
    model = load_causal_lm(base, dtype="float32")
    state = get_fp32_state_dict_from_zero_checkpoint(str(root), tag=tag)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise ModelLoadError(f"{root}/{tag} does not fit {base}: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
    model.tie_weights()
    tmp = out.with_name(f"{EXPORT_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(getattr(torch, cfg.model.dtype)).save_pretrained(tmp)
    load_tokenizer(base).save_pretrained(tmp)
    (tmp / _DONE).write_text(f"{root}/{tag}\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return ExportedCheckpoint(out, tag, cfg)
