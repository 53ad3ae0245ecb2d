"""Model sources: HF id or path, the bundled SmolLM2 GGUF, tiny random Llama (tests)."""

from seedgrpo.models.resolve import (
    ModelLoadError,
    load_causal_lm,
    load_tokenizer,
    resolve_model_dir,
)

__all__ = ["ModelLoadError", "load_causal_lm", "load_tokenizer", "resolve_model_dir"]
