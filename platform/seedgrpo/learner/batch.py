"""Training batches and the policy's log-probs of their responses.

A GRPO batch holds G responses to each prompt, and the learner's forward and backward passes
are most of a step. Two things keep them near the machine's roof:

- **Each prompt is computed once per micro-batch.** The distinct prompts run through the
  decoder first; their keys and values are then shared by every response to that prompt,
  which runs as a continuation (exactly as generation did). With G = 4 and prompts 40% of a
  sequence, this removes about 30% of the decoder's work; the gradients are the same, since
  each shared prompt activation receives the sum of its responses' gradients, as it would
  from G separate copies.
- **The output head runs only where a response token is predicted**, in chunks of at most
  ``chunk_tokens`` rows, so no (B, L, V) tensor ever exists (V = 49,152 for SmolLM2, 152k for
  Qwen); a prompt position's logits would be computed and thrown away.
- **The policy's token entropy comes from the same logits** (``with_entropy``): each chunk's
  full distribution is already there for the log-softmax, so the entropy most entropy-RL papers
  track costs no forward pass of its own; it is detached (a diagnostic, never a loss term).

Layout: U distinct prompts, right-padded to P; B responses, right-padded to R. Every per-token
tensor the loss reads is response-aligned, (B, R): column j is response token j.
``token_logprobs(share_prompts=False)`` computes the same numbers from whole prompt + response
sequences (used with gradient checkpointing, which transformers runs without a key-value cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["TrainSample", "TrainBatch", "collate", "loss_counts", "token_logprobs",
           "response_embeddings", "LOGPROB_CHUNK_TOKENS"]

# Rows of the output head computed at once: bounds the logits to chunk x V floats (400 MB at
# V = 49k, 1.2 GB at V = 152k). A batch with more response tokens recomputes each chunk in the
# backward pass instead of keeping its logits (activation checkpointing of the head alone).
LOGPROB_CHUNK_TOKENS = 2048


@dataclass(frozen=True)
class TrainSample:
    """One response to learn from: its ids, advantage and rollout (behaviour) log-probs.

    ``truncated``: generation stopped at ``rollout.max_new_tokens``, not at EOS (what
    ``train.overlong_filter`` drops from the loss).
    """

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    rollout_logprobs: list[float]
    truncated: bool = False


@dataclass
class TrainBatch:
    prompt_ids: torch.Tensor  # (U, P) the distinct prompts, right-padded
    prompt_mask: torch.Tensor  # (U, P) 1 on real prompt tokens
    prompt_index: torch.Tensor  # (B,) the prompt row each response continues
    response_ids: torch.Tensor  # (B, R) right-padded
    response_mask: torch.Tensor  # (B, R) float, 1 on real response tokens (EOS included)
    advantages: torch.Tensor  # (B,)
    rollout_logprobs: torch.Tensor  # (B, R), 0 outside the response
    truncated: torch.Tensor  # (B,) bool: cut off at the length limit

    def __len__(self) -> int:
        return self.response_ids.shape[0]

    @property
    def prompt_lengths(self) -> torch.Tensor:
        """(B,) the length of each response's prompt."""
        return self.prompt_mask.sum(1)[self.prompt_index]

    def to(self, device: torch.device | str) -> TrainBatch:
        """The batch on ``device`` (the learner's: CPU here, a GPU on a cluster)."""
        return TrainBatch(*(t.to(device) for t in (
            self.prompt_ids, self.prompt_mask, self.prompt_index, self.response_ids,
            self.response_mask, self.advantages, self.rollout_logprobs, self.truncated)))


def _right_padded(rows: list[list[float]], pad: float, dtype: torch.dtype
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max((len(r) for r in rows), default=0))
    values = torch.full((len(rows), width), pad, dtype=dtype)
    mask = torch.zeros((len(rows), width))
    for i, r in enumerate(rows):
        values[i, : len(r)] = torch.tensor(r, dtype=dtype)
        mask[i, : len(r)] = 1.0
    return values, mask


def collate(samples: list[TrainSample], pad_id: int) -> TrainBatch:
    """The distinct prompts (first-seen order) and every response, each right-padded."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    for i, s in enumerate(samples):
        if len(s.rollout_logprobs) != len(s.response_ids):
            raise ValueError(f"sample {i}: {len(s.response_ids)} response tokens but "
                             f"{len(s.rollout_logprobs)} rollout log-probs")
        if not s.prompt_ids:
            raise ValueError(f"sample {i} has an empty prompt; a response needs a context")
    rows: dict[tuple[int, ...], int] = {}
    index = [rows.setdefault(tuple(s.prompt_ids), len(rows)) for s in samples]
    prompt_ids, prompt_mask = _right_padded([list(p) for p in rows], pad_id, torch.long)
    response_ids, response_mask = _right_padded([s.response_ids for s in samples], pad_id,
                                                torch.long)
    rollout, _ = _right_padded([s.rollout_logprobs for s in samples], 0.0, torch.float32)
    advantages = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    truncated = torch.tensor([s.truncated for s in samples], dtype=torch.bool)
    return TrainBatch(prompt_ids, prompt_mask.long(), torch.tensor(index), response_ids,
                      response_mask, advantages, rollout, truncated)


def loss_counts(samples: list[TrainSample], *, overlong_filter: bool) -> tuple[int, int]:
    """The loss's normalisers over ``samples`` (one whole optimizer step, every rank's share):
    response tokens and responses, less the truncated ones under ``overlong_filter`` (they
    leave the loss and its normalisation alike). At least 1 each, so a mini-batch whose every
    response was filtered contributes a loss of 0, not 0 / 0.

    >>> rows = [TrainSample([1], [2, 3], 1.0, [0.0, 0.0]),
    ...         TrainSample([1], [4, 5, 6], 1.0, [0.0] * 3, truncated=True)]
    >>> loss_counts(rows, overlong_filter=False), loss_counts(rows, overlong_filter=True)
    ((5, 2), (2, 1))
    """
    kept = [s for s in samples if not (overlong_filter and s.truncated)]
    return max(1, sum(len(s.response_ids) for s in kept)), max(1, len(kept))


# -- hidden states that predict each response token ------------------------------------------
def _shared_prompt_states(decoder: torch.nn.Module, batch: TrainBatch) -> torch.Tensor:
    """(B, R, D): row b, column j is the final hidden state that predicts response token j.

    The prompts run once; each response then runs as a continuation over its prompt's keys and
    values (the cache is indexed per response, which is differentiable). Positions continue
    from each prompt's own length, so right-padded prompts are exact.
    """
    out = decoder(input_ids=batch.prompt_ids, attention_mask=batch.prompt_mask, use_cache=True)
    lengths = batch.prompt_mask.sum(1)  # (U,)
    last = out.last_hidden_state[torch.arange(len(lengths)), lengths - 1]  # (U, D)
    first = last[batch.prompt_index][:, None]  # (B, 1, D): predicts response token 0
    if batch.response_ids.shape[1] == 1:
        return first
    cache = out.past_key_values
    cache.batch_select_indices(batch.prompt_index)
    inputs = batch.response_ids[:, :-1]  # token j's state predicts token j + 1
    steps = torch.arange(inputs.shape[1], device=inputs.device)
    rest = decoder(
        input_ids=inputs,
        attention_mask=torch.cat([batch.prompt_mask[batch.prompt_index],
                                  batch.response_mask[:, :-1].long()], dim=1),
        position_ids=batch.prompt_lengths[:, None] + steps[None],
        past_key_values=cache, use_cache=True,
    ).last_hidden_state  # (B, R - 1, D)
    return torch.cat([first, rest], dim=1)


def _joined(batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Whole sequences (B, L) right-padded, their mask, and each response's start column."""
    starts = batch.prompt_lengths
    lengths = starts + batch.response_mask.sum(1).long()
    width = int(lengths.max())
    ids = torch.zeros((len(batch), width), dtype=torch.long, device=starts.device)
    for b in range(len(batch)):
        p = int(starts[b])
        r = int(lengths[b]) - p
        ids[b, :p] = batch.prompt_ids[batch.prompt_index[b], :p]
        ids[b, p:p + r] = batch.response_ids[b, :r]
    cols = torch.arange(width, device=starts.device)
    return ids, (cols[None] < lengths[:, None]).long(), starts


def _joined_states(decoder: torch.nn.Module, batch: TrainBatch) -> torch.Tensor:
    """(B, R, D) as ``_shared_prompt_states``, from whole sequences (no key-value cache)."""
    ids, mask, starts = _joined(batch)
    hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, D)
    steps = torch.arange(batch.response_ids.shape[1], device=ids.device)
    where = (starts[:, None] - 1 + steps[None]).clamp(max=ids.shape[1] - 1)  # (B, R)
    return hidden.gather(1, where[..., None].expand(-1, -1, hidden.shape[-1]))


def _chunk_logprobs(head: torch.nn.Module, rows: torch.Tensor, targets: torch.Tensor,
                    temperature: float, with_entropy: bool = False
                    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """log softmax(head(rows) / temperature)[target] for each row: (N, D) -> (N,), in fp32;
    with ``with_entropy`` also each row's entropy -sum p log p of that distribution (N,),
    detached."""
    logits = head(rows).float()
    if temperature != 1.0:
        logits = logits / temperature
    norm = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, targets[:, None])[:, 0] - norm
    if not with_entropy:
        return logp
    with torch.no_grad():  # H = logsumexp(z) - sum softmax(z) z: one (N, V) temporary
        entropy = norm - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    return logp, entropy


def _scatter(mask: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    return torch.zeros(mask.shape, dtype=torch.float32, device=flat.device).masked_scatter(
        mask, flat)


def token_logprobs(model: torch.nn.Module, batch: TrainBatch, *, temperature: float = 1.0,
                   share_prompts: bool = True, chunk_tokens: int = LOGPROB_CHUNK_TOKENS,
                   with_entropy: bool = False
                   ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """(B, R) log-probs of each response token under ``model`` at ``temperature``; 0 on
    padding (the loss masks it). ``model`` is a transformers causal LM (under DeepSpeed: the
    engine's ``module``).

    ``with_entropy``: also (B, R) the entropy of the policy's next-token distribution (at
    ``temperature``, the distribution that was sampled) at each response position, fp32,
    detached, 0 on padding; from the head's logits the log-probs already need.
    """
    decoder = model.get_decoder()
    states = (_shared_prompt_states if share_prompts else _joined_states)(decoder, batch)
    mask = batch.response_mask.bool()
    rows, targets = states[mask], batch.response_ids[mask]  # (N, D), (N,)
    head = model.get_output_embeddings()
    recompute = torch.is_grad_enabled() and rows.shape[0] > chunk_tokens
    pieces, entropies = [], []
    for start in range(0, rows.shape[0], chunk_tokens):
        chunk = (head, rows[start:start + chunk_tokens], targets[start:start + chunk_tokens],
                 temperature, with_entropy)
        out = (checkpoint(_chunk_logprobs, *chunk, use_reentrant=False) if recompute
               else _chunk_logprobs(*chunk))
        if with_entropy:
            out, entropy = out
            entropies.append(entropy.detach())
        pieces.append(out)
    empty = states.new_zeros(0, dtype=torch.float32)
    logp = _scatter(mask, torch.cat(pieces) if pieces else empty)
    if not with_entropy:
        return logp
    return logp, _scatter(mask, torch.cat(entropies) if entropies else empty)


def response_embeddings(model: torch.nn.Module, batch: TrainBatch) -> torch.Tensor:
    """(B, D) mean of the last layer's hidden states over each response's tokens.

    GCPO's ``policy`` embedding [recon]: where the policy itself places a response, at no extra
    model. A response with no tokens falls back to its last prompt token's state, so every row
    has a direction.
    """
    ids, mask, starts = _joined(batch)
    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    lengths = batch.response_mask.sum(1)  # (B,)
    cols = torch.arange(ids.shape[1], device=ids.device)[None]
    inside = ((cols >= starts[:, None]) & (cols < (starts + lengths.long())[:, None]))
    weights = inside.to(hidden.dtype)[..., None]
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    empty = lengths == 0
    if empty.any():
        pooled[empty] = hidden[torch.arange(len(starts)), starts - 1][empty]
    return pooled
