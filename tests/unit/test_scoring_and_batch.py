"""Scoring one group and building training batches (no Ray)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seedgrpo.config.sections import AlgorithmConfig, ModelConfig
from seedgrpo.learner.batch import TrainSample, collate, response_embeddings, token_logprobs
from seedgrpo.models import load_causal_lm, resolve_model_dir
from seedgrpo.rollout.hf_engine import HFEngine
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.scoring import score_group


def completion(text: str, logprobs: list[float]) -> Completion:
    return Completion(list(range(len(logprobs))), text, logprobs, truncated=False)


def test_score_group_hand_computed(strict_verifier) -> None:
    # answers 1/2, 0.5 (same value), 3, none; gold 0.5 -> rewards [1, 1, 0, 0]
    # math_verify clusters: {1/2, 0.5}, {3}, {none} -> discrete p = (2/4, 1/4, 1/4)
    # SE = -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 0.346574 + 0.693147 = 1.039721
    # x = 1.039721 / ln 4 = 0.75; linear f = 0.25; Dr. GRPO A = [0.5, 0.5, -0.5, -0.5] * 0.25
    group = [completion("\\boxed{1/2}", [-1.0]), completion("\\boxed{0.5}", [-2.0]),
             completion("\\boxed{3}", [-1.0]), completion("no answer", [-1.0])]
    algo = AlgorithmConfig(modulation="linear", alpha=1.0, estimator="discrete",
                           clustering="math_verify")
    score = score_group(group, "0.5", algo, verifier=strict_verifier)
    assert score.rewards == [1.0, 1.0, 0.0, 0.0]
    assert score.answers == ["1/2", "0.5", "3", None]
    assert score.cluster_ids == [0, 0, 1, 2]
    assert score.se == pytest.approx(1.039721, abs=1e-6)
    assert score.factor == pytest.approx(0.25)
    assert score.advantages == pytest.approx([0.125, 0.125, -0.125, -0.125])


def test_score_group_uses_mean_logprobs_for_rao(strict_verifier) -> None:
    # two singleton clusters with mean log-probs ln 3 / 1 and 0: w = (0.75, 0.25) -> 0.562335
    group = [completion("\\boxed{1}", [math.log(3)]), completion("\\boxed{2}", [0.0, 0.0])]
    algo = AlgorithmConfig(estimator="rao", clustering="exact", modulation="none")
    assert score_group(group, "1", algo, verifier=strict_verifier).se == pytest.approx(
        0.562335, abs=1e-6)


def test_collate_places_responses_and_masks() -> None:
    samples = [TrainSample([1, 2, 3], [4, 5], 0.5, [-0.1, -0.2]),
               TrainSample([6], [7, 8, 9], -1.0, [-0.3, -0.4, -0.5])]
    batch = collate(samples, pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]]
    # position t predicts token t + 1: sample 0's response starts at position 2
    assert batch.response_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert batch.rollout_logprobs[0, 2:].tolist() == pytest.approx([-0.1, -0.2])
    assert batch.advantages.tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="2 response tokens but 1 rollout log-probs"):
        collate([TrainSample([1], [2, 3], 0.0, [0.0])], pad_id=0)


def test_token_logprobs_match_a_single_sequence_forward(tmp_path: Path) -> None:
    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(tmp_path)))
    engine = HFEngine(model_dir)
    model = load_causal_lm(model_dir).eval()
    samples = [TrainSample([5, 6, 7], [8, 9], 0.0, [0.0, 0.0]),
               TrainSample([10], [11, 12, 13], 0.0, [0.0] * 3)]
    batch = collate(samples, pad_id=engine.tokenizer.pad_token_id)
    with torch.no_grad():
        lp = token_logprobs(model, batch)
    for i, s in enumerate(samples):  # right padding leaves the real tokens' log-probs intact
        got = lp[i][batch.response_mask[i].bool()].tolist()
        assert got == pytest.approx(engine.sequence_logprobs(s.prompt_ids, s.response_ids),
                                    abs=1e-5)


def test_response_embeddings_mean_pool_each_response_alone(tmp_path: Path) -> None:
    """GCPO's policy embedding of a response in a padded batch equals the mean of the last
    hidden states over that response's tokens, computed on the sequence alone."""
    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(tmp_path)))
    model = load_causal_lm(model_dir).eval()
    samples = [TrainSample([5, 6, 7], [8, 9], 0.0, [0.0, 0.0]),
               TrainSample([10], [11, 12, 13], 0.0, [0.0] * 3),
               TrainSample([14, 15], [], 0.0, [])]  # no response: the last prompt token
    batch = collate(samples, pad_id=0)
    with torch.no_grad():
        got = response_embeddings(model, batch)
        for i, s in enumerate(samples):
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
            want = (hidden[len(s.prompt_ids):].mean(0) if s.response_ids else hidden[-1])
            assert torch.allclose(got[i], want, atol=1e-5), i


def test_score_group_gcpo_reads_the_embeddings(strict_verifier) -> None:
    algo = AlgorithmConfig(uncertainty="gcpo", modulation="linear", alpha=1.0,
                           group_size=4, clustering="exact")
    group = [completion(t, [-0.1]) for t in
             (r"\boxed{1}", r"\boxed{1}", r"\boxed{2}", r"\boxed{3}")]
    same = score_group(group, "1", algo, verifier=strict_verifier,
                       embeddings=[[1.0, 0.0]] * 4)
    assert (same.se, same.factor) == (0.0, 1.0)  # one direction: U = 0, nothing modulated
    one_right = [completion(t, [-0.1]) for t in
                 (r"\boxed{1}", r"\boxed{2}", r"\boxed{3}", r"\boxed{4}")]
    spread = score_group(one_right, "1", algo, verifier=strict_verifier,
                         embeddings=[[1, 0], [0, 1], [-1, 0], [0, -1]])
    # cosine dispersion of these 4 unit rows: mean is 0, so CD = 4/3 (1 - 0) = its maximum,
    # normalised 1. Rewards 1,0,0,0: std = sqrt(3)/4, RD_n = sqrt(3)/2, U = 1 - sqrt(3)/2.
    u = 1 - math.sqrt(3) / 2
    assert spread.se == pytest.approx(u)
    assert spread.factor == pytest.approx(1 - u)  # linear, alpha 1
    assert spread.advantages == pytest.approx([a * (1 - u) for a in (0.75, -0.25, -0.25, -0.25)])
    assert spread.num_clusters == 4
    with pytest.raises(ValueError, match="needs one embedding per completion"):
        score_group(group, "1", algo, verifier=strict_verifier)
