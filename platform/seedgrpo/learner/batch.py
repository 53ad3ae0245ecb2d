"""Training batches: prompt + response token ids, right-padded, with the response mask.

Shapes: B responses, L = longest prompt + response in the batch; the response mask marks the
response tokens (EOS included, padding excluded). Log-probs are taken at the positions that
predict the response tokens, giving (B, T) tensors with T = L - 1 aligned to input_ids[:, 1:].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TrainSample", "TrainBatch", "collate", "token_logprobs", "response_embeddings"]


@dataclass(frozen=True)
class TrainSample:
    """One response to learn from: its ids, advantage and rollout (behaviour) log-probs."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    rollout_logprobs: list[float]


@dataclass
class TrainBatch:
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    response_mask: torch.Tensor  # (B, L - 1): 1 where input_ids[:, 1:] is a response token
    advantages: torch.Tensor  # (B,)
    rollout_logprobs: torch.Tensor  # (B, L - 1), 0 outside the response

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str) -> TrainBatch:
        """The batch on ``device`` (the learner's: CPU here, a GPU on a cluster)."""
        return TrainBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask,
                                                   self.response_mask, self.advantages,
                                                   self.rollout_logprobs)))


def collate(samples: list[TrainSample], pad_id: int) -> TrainBatch:
    """Right-pad prompt + response; place each response's mask and log-probs at its positions."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    b = len(samples)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    attention = torch.zeros((b, width), dtype=torch.long)
    response_mask = torch.zeros((b, width - 1))
    rollout = torch.zeros((b, width - 1))
    for i, s in enumerate(samples):
        if len(s.rollout_logprobs) != len(s.response_ids):
            raise ValueError(f"sample {i}: {len(s.response_ids)} response tokens but "
                             f"{len(s.rollout_logprobs)} rollout log-probs")
        ids = s.prompt_ids + s.response_ids
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        start = len(s.prompt_ids) - 1  # position that predicts the first response token
        response_mask[i, start : start + len(s.response_ids)] = 1.0
        rollout[i, start : start + len(s.response_ids)] = torch.tensor(s.rollout_logprobs)
    advantages = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    return TrainBatch(input_ids, attention, response_mask, advantages, rollout)


def token_logprobs(model: torch.nn.Module, batch: TrainBatch, *, temperature: float = 1.0
                   ) -> torch.Tensor:
    """(B, L - 1) log-probs of each next token under ``model`` at ``temperature``."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logits = logits[:, :-1].float() / temperature  # (B, L - 1, V): position t predicts t + 1
    return torch.log_softmax(logits, dim=-1).gather(-1, batch.input_ids[:, 1:, None])[..., 0]


def response_embeddings(model: torch.nn.Module, batch: TrainBatch) -> torch.Tensor:
    """(B, D) mean of the last layer's hidden states over each response's tokens.

    GCPO's ``policy`` embedding [recon]: where the policy itself places a response, at no extra
    model. A response with no tokens falls back to its last prompt token's state, so every row
    has a direction.
    """
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                output_hidden_states=True)
    hidden = out.hidden_states[-1][:, 1:].float()  # (B, L - 1, D), aligned with response_mask
    mask = batch.response_mask[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    empty = batch.response_mask.sum(1) == 0
    if empty.any():
        last = batch.attention_mask.sum(1) - 1  # the last real token of each row
        full = out.hidden_states[-1].float()
        pooled[empty] = full[torch.arange(len(last)), last][empty]
    return pooled
