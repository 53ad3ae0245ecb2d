"""seedgrpo: uncertainty-aware GRPO (SEED-GRPO, GCPO) research platform.

Kept import-light on purpose: ``import seedgrpo`` must not pull in torch, Ray or vLLM, so that
config tools, the dry run and the verifier worker start in well under a second.
"""

__version__ = "0.1.0"
