"""Scoring one group and building training batches (no Ray)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seedgrpo.config.sections import AlgorithmConfig, ModelConfig
from seedgrpo.learner.batch import TrainSample, collate, response_embeddings, token_logprobs
from seedgrpo.models import load_causal_lm, resolve_model_dir
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
    assert score.uncertainty == score.se == pytest.approx(1.039721, abs=1e-6)
    assert score.factor == pytest.approx(0.25)
    assert score.advantages == pytest.approx([0.125, 0.125, -0.125, -0.125])


def test_score_group_uses_mean_logprobs_for_rao(strict_verifier) -> None:
    # two singleton clusters with mean log-probs ln 3 / 1 and 0: w = (0.75, 0.25) -> 0.562335
    group = [completion("\\boxed{1}", [math.log(3)]), completion("\\boxed{2}", [0.0, 0.0])]
    algo = AlgorithmConfig(estimator="rao", clustering="exact", modulation="none")
    assert score_group(group, "1", algo, verifier=strict_verifier).uncertainty == pytest.approx(
        0.562335, abs=1e-6)


def test_collate_shares_prompts_and_aligns_responses() -> None:
    samples = [TrainSample([1, 2, 3], [4, 5], 0.5, [-0.1, -0.2]),
               TrainSample([6], [7, 8, 9], -1.0, [-0.3, -0.4, -0.5]),
               TrainSample([1, 2, 3], [9], 0.25, [-0.6])]
    batch = collate(samples, pad_id=0)
    assert batch.prompt_ids.tolist() == [[1, 2, 3], [6, 0, 0]]  # distinct, first-seen order
    assert batch.prompt_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch.prompt_index.tolist() == [0, 1, 0]
    assert batch.prompt_lengths.tolist() == [3, 1, 3]
    # response-aligned: column j is response token j
    assert batch.response_ids.tolist() == [[4, 5, 0], [7, 8, 9], [9, 0, 0]]
    assert batch.response_mask.tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]
    assert batch.rollout_logprobs[0, :2].tolist() == pytest.approx([-0.1, -0.2])
    assert batch.advantages.tolist() == [0.5, -1.0, 0.25]
    with pytest.raises(ValueError, match="2 response tokens but 1 rollout log-probs"):
        collate([TrainSample([1], [2, 3], 0.0, [0.0])], pad_id=0)
    with pytest.raises(ValueError, match="empty prompt"):
        collate([TrainSample([], [2], 0.0, [0.0])], pad_id=0)


def _groups_of_samples() -> list[TrainSample]:
    """Two prompts of different lengths, three responses each, of different lengths."""
    out = []
    for prompt in ([5, 6, 7, 8, 9], [10, 11]):
        for response in ([12, 13, 14], [15], [16, 17, 18, 19, 20]):
            out.append(TrainSample(prompt, response, 0.0, [0.0] * len(response)))
    return out


def _full_sequence_logprobs(model, sample: TrainSample) -> torch.Tensor:
    """The reference: one whole sequence, the full vocabulary's log-softmax."""
    ids = torch.tensor([sample.prompt_ids + sample.response_ids])
    logits = model(input_ids=ids).logits[0, len(sample.prompt_ids) - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(
        -1, torch.tensor(sample.response_ids)[:, None])[:, 0]


@pytest.mark.parametrize("share", [True, False], ids=["shared-prompts", "joined"])
@pytest.mark.parametrize("chunk", [2048, 3], ids=["one-chunk", "chunked"])
def test_response_logprobs_equal_full_sequence_logprobs(tmp_path: Path, share: bool,
                                                        chunk: int) -> None:
    """Response positions only (shared prompts or whole sequences, one or many head chunks)
    give the full-sequence log-probs within 1e-5, at temperature 1 and 0.7."""
    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(tmp_path)))
    model = load_causal_lm(model_dir).eval()
    samples = _groups_of_samples()
    batch = collate(samples, pad_id=0)
    with torch.no_grad():
        for temperature in (1.0, 0.7):
            lp = token_logprobs(model, batch, temperature=temperature, share_prompts=share,
                                chunk_tokens=chunk)
            assert lp.shape == batch.response_mask.shape
            for i, s in enumerate(samples):
                ids = torch.tensor([s.prompt_ids + s.response_ids])
                logits = model(input_ids=ids).logits[0, len(s.prompt_ids) - 1:-1].float()
                want = torch.log_softmax(logits / temperature, -1).gather(
                    -1, torch.tensor(s.response_ids)[:, None])[:, 0]
                got = lp[i, : len(s.response_ids)]
                assert torch.allclose(got, want, atol=1e-5), (i, temperature)
                assert (lp[i, len(s.response_ids):] == 0).all()  # padding stays 0


def test_shared_prompt_gradients_equal_full_sequence_gradients(tmp_path: Path) -> None:
    """The update is the same: a weighted sum of the log-probs has the same gradient whether
    the prompts are shared, the sequences joined, or each sequence run alone (the head in
    recomputed chunks included)."""
    model_dir = resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                              cache_dir=str(tmp_path)))
    model = load_causal_lm(model_dir)
    samples = _groups_of_samples()
    batch = collate(samples, pad_id=0)
    weights = torch.linspace(-1.0, 1.0, batch.response_mask.numel()).view_as(
        batch.response_mask) * batch.response_mask

    def grads(objective) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        objective().backward()
        return [p.grad.clone() for p in model.parameters()]

    def reference() -> torch.Tensor:
        return sum((_full_sequence_logprobs(model, s) * weights[i, : len(s.response_ids)]).sum()
                   for i, s in enumerate(samples))

    want = grads(reference)
    for share, chunk in ((True, 2048), (True, 4), (False, 4)):
        got = grads(lambda share=share, chunk=chunk: (token_logprobs(
            model, batch, share_prompts=share, chunk_tokens=chunk) * weights).sum())
        for g, w in zip(got, want, strict=True):
            assert torch.allclose(g, w, atol=1e-5, rtol=1e-4), (share, chunk)


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
    assert (same.uncertainty, same.factor) == (0.0, 1.0)  # one direction: U = 0, nothing modulated
    one_right = [completion(t, [-0.1]) for t in
                 (r"\boxed{1}", r"\boxed{2}", r"\boxed{3}", r"\boxed{4}")]
    spread = score_group(one_right, "1", algo, verifier=strict_verifier,
                         embeddings=[[1, 0], [0, 1], [-1, 0], [0, -1]])
    # cosine dispersion of these 4 unit rows: mean is 0, so CD = 4/3 (1 - 0) = its maximum,
    # normalised 1. Rewards 1,0,0,0: std = sqrt(3)/4, RD_n = sqrt(3)/2, U = 1 - sqrt(3)/2.
    u = 1 - math.sqrt(3) / 2
    assert spread.uncertainty == pytest.approx(u)
    # SE is computed for GCPO runs too: 4 singleton clusters, equal log-probs -> ln 4
    assert spread.se == pytest.approx(math.log(4))
    assert spread.factor == pytest.approx(1 - u)  # linear, alpha 1
    assert spread.advantages == pytest.approx([a * (1 - u) for a in (0.75, -0.25, -0.25, -0.25)])
    assert spread.num_clusters == 4
    with pytest.raises(ValueError, match="needs one embedding per completion"):
        score_group(group, "1", algo, verifier=strict_verifier)
