"""GCPO's frozen sentence encoder (``algorithm.gcpo.embedding: encoder | answer``) [recon].

The scorer embeds each response's text (``encoder``) or its extracted final answer
(``answer``) with a local sentence-transformers model, so a GCPO run with these embeddings asks
nothing of the learner ranks. The model is read from disk only: ``local_files_only`` and the
hub's offline switch are set, so a missing file fails here instead of reaching for a network a
training cluster may not have. A response without an extracted answer gets the embedding of
the empty string: one fixed direction shared by every such response (they "say" the same
nothing), never a zero row, which has no direction.

sentence-transformers is the optional extra ``encoder`` (``pip install seedgrpo[encoder]``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from seedgrpo.algorithms import extract_answer
from seedgrpo.rollout.types import Completion

__all__ = ["EncoderError", "SentenceEncoder", "check_encoder", "load_encoder", "encoder_texts",
           "group_embeddings"]

logger = logging.getLogger(__name__)

_EXTRA = "pip install 'seedgrpo[encoder]'"


class EncoderError(RuntimeError):
    """The sentence encoder cannot be loaded (the extra or the directory is missing)."""


def check_encoder(directory: str | None) -> Path:
    """The encoder directory, if sentence-transformers imports and the directory holds a model;
    otherwise one line saying what is missing."""
    try:
        missing = importlib.util.find_spec("sentence_transformers") is None
    except ValueError:  # sys.modules holds None for it: imports of it are blocked
        missing = True
    if missing:
        raise EncoderError("algorithm.gcpo.embedding 'encoder' / 'answer' needs "
                           f"sentence-transformers, which is not installed; {_EXTRA}")
    if not directory:
        raise EncoderError("algorithm.gcpo.encoder is not set; give a local "
                           "sentence-transformers model directory (e.g. all-MiniLM-L6-v2)")
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise EncoderError(f"algorithm.gcpo.encoder '{directory}' is not a directory; give a "
                           "local sentence-transformers model directory (it is never "
                           "downloaded)")
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise EncoderError(f"algorithm.gcpo.encoder '{directory}' holds no model "
                           "(no modules.json or config.json); give a sentence-transformers "
                           "model directory")
    return path


class SentenceEncoder:
    """A frozen sentence-transformers model, rows unit-normalised (only directions matter)."""

    def __init__(self, directory: str | Path, *, device: str | None = None) -> None:
        path = check_encoder(str(directory))
        os.environ["HF_HUB_OFFLINE"] = "1"  # never download; the model is on disk
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as err:  # a broken directory: one line, not a hub traceback
            raise EncoderError(f"algorithm.gcpo.encoder '{directory}' could not be loaded as a "
                               f"sentence-transformers model: {err}") from err
        self.model.eval()
        self.directory = str(path)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-norm row per text."""
        if not texts:
            return []
        rows = self.model.encode(list(texts), convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return rows.astype(float).tolist()


@lru_cache(maxsize=2)
def load_encoder(directory: str) -> SentenceEncoder:
    """The encoder of ``directory``, loaded once per process (a sweep's trials share it)."""
    logger.info("loading the sentence encoder from %s", directory)
    return SentenceEncoder(directory)


def encoder_texts(completions: Sequence[Completion], mode: str) -> list[str]:
    """What the encoder reads of each completion: its text (``encoder``) or its extracted
    final answer, the empty string where there is none (``answer``).

    >>> from seedgrpo.rollout.types import Completion
    >>> done = [Completion([1], "so \\\\boxed{4}", [0.0], False), Completion([1], "no idea",
    ...         [0.0], False)]
    >>> encoder_texts(done, "answer")
    ['4', '']
    """
    if mode == "encoder":
        return [c.text for c in completions]
    if mode == "answer":
        return [extract_answer(c.text) or "" for c in completions]
    raise ValueError(f"embedding mode '{mode}' is not one the encoder serves; use 'encoder' "
                     "or 'answer'")


def group_embeddings(encoder: Any, groups: Sequence[Sequence[Completion]], mode: str
                     ) -> list[list[list[float]]]:
    """(P, G, D) embeddings of every group, encoded in one batch."""
    texts = [t for g in groups for t in encoder_texts(g, mode)]
    rows = encoder.embed(texts)
    out, start = [], 0
    for g in groups:
        out.append(rows[start:start + len(g)])
        start += len(g)
    return out
