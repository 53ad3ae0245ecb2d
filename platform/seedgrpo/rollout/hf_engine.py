"""Rollout with transformers ``generate``: batched, left-padded, with the KV cache.

The reference engine: slower than vLLM on a GPU, similar on a 2-core CPU
(docs/PLATFORM_NOTES.md, "Engines on CPU"), and it runs everywhere transformers does. Sampling
log-probs come from the processed scores (after the temperature and top-p warpers), matching
vLLM's ``processed_logprobs`` mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig

from seedgrpo.models import load_causal_lm, load_tokenizer
from seedgrpo.rollout.types import Completion, SamplingSettings

__all__ = ["HFEngine"]

logger = logging.getLogger(__name__)


class HFEngine:
    """A transformers model that generates groups of completions."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "float32",
                 max_batch_sequences: int = 64) -> None:
        self.model_dir = Path(model_dir)
        self.tokenizer = load_tokenizer(self.model_dir)
        self.model = load_causal_lm(self.model_dir, dtype=dtype).eval()
        self.max_batch_sequences = max_batch_sequences  # prompts x n per generate call
        self._eos = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _shared_prefill(self, input_ids: torch.Tensor, attention: torch.Tensor, rows: int
                        ) -> Any:
        """The prompts' keys and values, computed once and repeated for each of their
        ``rows`` samples (``generate`` would prefill every sample's copy of the prompt: G
        times the work). The last prompt token is left for ``generate`` to process."""
        if input_ids.shape[1] < 2:
            return None
        positions = (attention.cumsum(1) - 1).clamp(min=0)  # as generate derives them
        cache = self.model(input_ids=input_ids[:, :-1], attention_mask=attention[:, :-1],
                           position_ids=positions[:, :-1], use_cache=True).past_key_values
        cache.batch_repeat_interleave(rows)
        return cache

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], s: SamplingSettings
                        ) -> list[list[Completion]]:
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # (P, L) left
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        greedy = s.temperature == 0.0
        rows = 1 if greedy else s.n  # greedy samples are identical: decode once, repeat
        # An explicit config: the model's own generation_config (repetition_penalty, top_k, ...)
        # would change the sampling policy away from the one the learner and vLLM assume.
        config = GenerationConfig(
            max_new_tokens=s.max_new_tokens, do_sample=not greedy,
            temperature=1.0 if greedy else s.temperature, top_p=1.0 if greedy else s.top_p,
            top_k=0, repetition_penalty=1.0, num_return_sequences=1, output_scores=True,
            return_dict_in_generate=True, pad_token_id=pad, eos_token_id=sorted(self._eos),
        )
        cache = self._shared_prefill(input_ids, attention, rows) if rows > 1 else None
        out = self.model.generate(input_ids=input_ids.repeat_interleave(rows, 0),
                                  attention_mask=attention.repeat_interleave(rows, 0),
                                  past_key_values=cache, generation_config=config)
        new = out.sequences[:, width:]  # (P * rows, T): prompt p's samples are rows p*rows ...
        # one step at a time: stacking all (P * rows, T, V) scores would cost GBs of memory
        logprobs = torch.stack([
            torch.log_softmax(step.float(), dim=-1).gather(-1, new[:, t, None])[:, 0]
            for t, step in enumerate(out.scores)
        ], dim=1)  # (P * rows, T)
        groups: list[list[Completion]] = []
        for p in range(len(prompts)):
            group = []
            for sample in range(s.n):
                row = p * rows + (0 if greedy else sample)
                ids = new[row].tolist()
                stop = next((i for i, t in enumerate(ids) if t in self._eos), None)
                length = len(ids) if stop is None else stop + 1  # keep the EOS token
                token_ids = ids[:length]
                group.append(Completion(
                    token_ids=token_ids,
                    text=self.tokenizer.decode(token_ids, skip_special_tokens=True),
                    logprobs=logprobs[row, :length].tolist(),
                    truncated=stop is None,
                ))
            groups.append(group)
        return groups

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        """Groups of ``settings.n`` completions, in prompt order, batched to bound memory."""
        torch.manual_seed(settings.seed)
        per_call = max(1, self.max_batch_sequences // settings.n)
        groups: list[list[Completion]] = []
        for start in range(0, len(prompt_ids), per_call):
            groups += self._generate_batch(prompt_ids[start : start + per_call], settings)
        return groups

    @torch.no_grad()
    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        ids = torch.tensor([prompt_ids + completion_ids])
        logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1]  # (T, V)
        lp = torch.log_softmax(logits.float(), dim=-1)
        return lp.gather(-1, torch.tensor(completion_ids)[:, None])[:, 0].tolist()

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy named tensors into the model (every parameter must be given)."""
        state = dict(weights)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
        if unexpected or set(missing) - tied:
            raise ValueError(f"weights do not fit the model: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        return len(state)

    def load_weights_from_dir(self, path: str | Path) -> None:
        from safetensors.torch import load_file

        files = sorted(Path(path).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no .safetensors files in {path}")
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(file))
        self.load_weights(state.items())

    def reset_weights(self) -> None:
        self.load_weights_from_dir(self.model_dir)

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str) -> None:
        from seedgrpo.models.weight_sync import open_sync_group

        self._weight_group = open_sync_group(host, port, rank, world_size, backend)

    def receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        from seedgrpo.models.weight_sync import receive_tensors

        return self.load_weights(receive_tensors(self._weight_group, specs))

    def close(self) -> None:
        """Nothing outside this process to stop: the model goes with the object."""
