"""Problems and their data: the one problem type (training and benchmarks), synthetic
arithmetic, JSON Lines and HF datasets, templates, the sampler."""

from seedgrpo.data.dataset import ProblemPools, build_pools
from seedgrpo.data.jsonl import DataError, load_jsonl_problems
from seedgrpo.data.problems import GoldAnswer, Problem
from seedgrpo.data.sampler import PromptSampler
from seedgrpo.data.synthetic import generate_arithmetic
from seedgrpo.data.templates import QWEN_MATH_INSTRUCTION, render_prompt

__all__ = ["DataError", "GoldAnswer", "Problem", "ProblemPools", "PromptSampler",
           "QWEN_MATH_INSTRUCTION", "build_pools", "generate_arithmetic", "load_jsonl_problems",
           "render_prompt"]
