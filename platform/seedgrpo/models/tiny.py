"""``tiny-random``: a small random Llama with a byte-level tokenizer, built with no download.

For tests and smoke runs: a DeepSpeed step takes ~0.05 s. The tokenizer is byte-level BPE with no
merges (256 byte tokens plus specials), so any text round-trips, and it carries a chat template so
the prompt templates work unchanged. The model is written to the cache as a normal HF directory,
which vLLM loads like any other model. Weights are seeded: the same config gives the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

from seedgrpo.config.catalogue import TINY_MODELS
from seedgrpo.models.cache import build_once, cache_root

__all__ = ["TINY_MODELS", "tiny_model_dir"]

_SPECIALS = ["<|pad|>", "<|begin|>", "<|end|>"]
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_SEED = 1234


def _build_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(_SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", bos_token="<|begin|>", eos_token="<|end|>",
        chat_template=_CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(out)
    return tokenizer


def _build(name: str, out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _build_tokenizer(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=2048, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **TINY_MODELS[name],
    )
    torch.manual_seed(_SEED)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    (out / "seedgrpo_tiny.json").write_text(json.dumps({"name": name, "seed": _SEED}) + "\n")


def tiny_model_dir(name: str, cache_dir: str | None = None) -> Path:
    """A directory with the tiny random model and its tokenizer, built once per cache."""
    if name not in TINY_MODELS:
        raise ValueError(f"unknown tiny model '{name}'; known: {', '.join(TINY_MODELS)}")
    return build_once(cache_root(cache_dir) / "models" / name, lambda tmp: _build(name, tmp))
