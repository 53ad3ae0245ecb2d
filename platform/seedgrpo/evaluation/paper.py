"""The paper's published results, as reference lines for reports (docs/ALGORITHMS.md section 3).

SEED-GRPO (arXiv 2505.12346), Tables 2 and 4: greedy pass@1 in percent, 3000 new tokens, the
Qwen-math prompt. The paper's AMC column uses 83 problems (AMC 2022+2023); ``amc23`` here has
40, so that column is comparable in protocol but not in problem set. The Qwen2.5-Math-7B base
row prints AIME24 as "0.2"; 20.0 is the value the Avg column implies.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PaperResult", "PAPER_RESULTS", "PAPER_ABLATIONS"]


@dataclass(frozen=True)
class PaperResult:
    run: str
    model: str
    aime24: float
    amc23: float
    math500: float
    minerva_math: float
    olympiadbench: float
    avg: float

    def as_metrics(self) -> dict[str, float]:
        """The row under this platform's metric names, as fractions (0-1) like our metrics."""
        return {f"eval/{b}/pass_at_1": getattr(self, b) / 100.0
                for b in ("aime24", "amc23", "math500", "minerva_math", "olympiadbench")
                } | {"eval/avg/pass_at_1": self.avg / 100.0}


PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("Qwen2.5-Math-7B base", "7B", 20.0, 45.8, 69.0, 21.3, 34.7, 38.2),
    PaperResult("Dr. GRPO 7B", "7B", 43.3, 62.7, 80.0, 30.1, 41.0, 51.4),
    PaperResult("SEED-GRPO 7B (linear, alpha 0.02, G 8)", "7B", 46.7, 69.9, 83.0, 36.7,
                46.8, 56.6),
    PaperResult("SEED-GRPO 7B (G 16)", "7B", 56.7, 68.7, 83.4, 34.2, 48.0, 58.2),
    PaperResult("Dr. GRPO 1.5B", "1.5B", 20.0, 53.0, 74.2, 25.7, 37.6, 42.1),
    PaperResult("SEED-GRPO 1.5B", "1.5B", 23.3, 50.6, 75.4, 26.8, 41.3, 43.5),
)


# Table 4 ablations (7B, Avg over the five benchmarks, fractions): one varied setting each, the
# rest at linear f, alpha 0.02, G 8. Keys are this platform's config paths.
PAPER_ABLATIONS: dict[str, dict[object, float]] = {
    "algorithm.alpha": {0.01: 0.527, 0.02: 0.566, 0.03: 0.546},
    "algorithm.modulation": {"linear": 0.566, "exp": 0.543, "focal": 0.551},
    "algorithm.group_size": {8: 0.566, 10: 0.562, 16: 0.582},
}
