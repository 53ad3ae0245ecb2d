"""train/token_entropy_mean's per-token entropies: from the log-prob pass's own logits, equal
to a direct computation from the full logits, on every path (shared prompts or whole
sequences, one head chunk or many, recomputed in the backward pass or not)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seedgrpo.config.sections import ModelConfig
from seedgrpo.learner.batch import TrainSample, collate, token_logprobs
from seedgrpo.models import load_causal_lm, resolve_model_dir


@pytest.mark.parametrize(("share", "chunk", "grad"), [
    (True, 2048, False), (True, 3, False), (False, 3, False),
    (True, 3, True),  # more tokens than a chunk, with grad: the recomputed-head path
], ids=["shared", "chunked", "joined-chunked", "chunked-recompute"])
def test_token_entropy_equals_full_logits_entropy(model_cache: Path, share: bool, chunk: int,
                                                  grad: bool) -> None:
    model = load_causal_lm(resolve_model_dir(ModelConfig(
        source="tiny-random", name="tiny-llama", cache_dir=str(model_cache)))).eval()
    samples = [TrainSample([5, 6, 7, 8], [12, 13, 14], 0.0, [0.0] * 3),
               TrainSample([10, 11], [15], 0.0, [0.0]),
               TrainSample([5, 6, 7, 8], [16, 17, 18, 19], 0.0, [0.0] * 4)]
    batch = collate(samples, pad_id=0)
    for temperature in (1.0, 0.7):
        with torch.set_grad_enabled(grad):
            logp, entropy = token_logprobs(model, batch, temperature=temperature,
                                           share_prompts=share, chunk_tokens=chunk,
                                           with_entropy=True)
            plain = token_logprobs(model, batch, temperature=temperature,
                                   share_prompts=share, chunk_tokens=chunk)
        assert not entropy.requires_grad and entropy.dtype == torch.float32
        assert logp.requires_grad == grad
        assert torch.equal(logp.detach(), plain.detach())  # the log-probs are untouched
        if grad:
            logp.sum().backward()  # the recomputed chunks still give a gradient
            assert model.get_output_embeddings().weight.grad is not None
        with torch.no_grad():
            for i, s in enumerate(samples):
                ids = torch.tensor([s.prompt_ids + s.response_ids])
                logits = model(input_ids=ids).logits[0, len(s.prompt_ids) - 1:-1].float()
                logits = logits / temperature
                want = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)
                n = len(s.response_ids)
                assert torch.allclose(entropy[i, :n], want, atol=1e-5), (i, temperature)
                assert (entropy[i, n:] == 0).all()
