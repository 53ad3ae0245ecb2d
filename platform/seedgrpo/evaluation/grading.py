r"""Benchmark grading: is a completion's final answer the gold answer?

The answer is the content of the last ``\boxed{}`` (the paper's prompt asks for it there, and
training rewards read the same place). It is compared with the gold answer by math-verify (in
the time-bounded worker of ``seedgrpo.rewards.verifier``), after normalisations that each
benchmark needs because of how its gold answers are written:

- **integer** (AIME24, AMC23): answers are whole numbers. AIME golds keep leading zeros
  (``"025"``) and AMC golds were stored as floats (``27.0``) upstream, so when both sides read
  as plain numbers they are compared as numbers, exactly: ``025`` = ``25`` = ``25.0``, and
  ``25.5`` is wrong.
- **math** (MATH500): math-verify alone. It already handles ``\frac`` vs decimals, ``\left(``,
  ``\text{(C)}`` vs ``C``, ``x=5`` vs ``5``, unordered sets and intervals.
- **physical** (Minerva-Math, OlympiadBench): answers are measurements. Golds use Python-style
  scientific notation (``4.4e7``) that LaTeX parsers read as ``4.4 * e * 7``, so E-notation on
  either side becomes ``4.4\times10^{7}``; ``\%`` and the row's unit (OlympiadBench's ``unit``
  field, e.g. ``km``) are dropped from the prediction; and plain numbers are equal within a
  relative tolerance of 1e-4, the Qwen2.5-Math / ToRA harness's ``numeric_equal`` (that harness
  produced the paper's numbers), or within the row's own absolute tolerance where the row gives
  one (OlympiadBench's ``error`` field).

Multi-part answers (OlympiadBench ``is_multiple_answer``: ``69,84``, ``(1,1), (3,2)``) need no
rule of their own: math-verify compares comma lists as sets, so the order of the parts does not
matter and a missing part is wrong. A gold that is several accepted answers
(``GoldAnswer.alternatives``) is matched when any one of them is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from seedgrpo.algorithms.answers import extract_answer
from seedgrpo.config.catalogue import GRADING_RULES, GradingRule
from seedgrpo.data.problems import GoldAnswer
from seedgrpo.rewards.verifier import GRADING_TIMEOUT_S, Verifier

__all__ = ["GRADING_RULES", "GradingRule", "Verdict", "Grader", "as_number",
           "grading_verifier", "split_top_level"]


def grading_verifier() -> Verifier:
    """A verifier with the grading bound (``GRADING_TIMEOUT_S``), for graders given none."""
    return Verifier(timeout_s=GRADING_TIMEOUT_S)


@dataclass(frozen=True)
class Verdict:
    correct: bool
    answer: str | None  # the extracted final answer; None when there was no \boxed{}
    reason: str = field(default="")  # which check decided it, for the samples file


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_E_NOTATION = re.compile(r"(?<![\w.])([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]([+-]?\d+)(?![\w.])")
_TIMES_TEN = re.compile(
    r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?$")
_NUMPY = re.compile(r"\bnp\.([a-z]+)")
_WRAPPERS = re.compile(r"^\$+|\$+$")
_THIN_SPACES = re.compile(r"\\[,;:! ]|~")
_TEXT_TAIL = re.compile(r"\s*\\(?:text|mathrm|mbox|textrm)\s*\{[^{}]*\}\s*$")


def as_number(text: str) -> float | None:
    r"""``text`` as a number when it is one: ``1,000``, ``4.4e7``, ``4.4\times10^{7}``, ``\$5``.

    Never evaluates anything: a fixed pattern or ``None``.

    >>> as_number("025"), as_number("4.4e7"), as_number("4.4 \\times 10^{7}"), as_number("x")
    (25.0, 44000000.0, 44000000.0, None)
    """
    t = _THIN_SPACES.sub("", _WRAPPERS.sub("", text.strip())).replace("{,}", "")
    t = t.replace("\\$", "").replace("\\!", "").strip()
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", t):
        t = t.replace(",", "")
    try:
        if _NUMBER.match(t):
            return float(t)
        m = _TIMES_TEN.match(t)
        if m:
            return float(m.group(1)) * 10.0 ** int(m.group(2))
    except (OverflowError, ValueError):
        return None
    return None


def _latex_e_notation(text: str) -> str:
    """``4.4e7`` -> ``4.4\\times10^{7}`` (math-verify would read ``e`` as Euler's number)."""
    return _E_NOTATION.sub(lambda m: f"{m.group(1)}\\times10^{{{m.group(2)}}}", text)


def split_top_level(text: str) -> list[str]:
    """Comma-separated parts outside any bracket: ``(1,2), 3`` -> ``['(1,2)', '3']``.

    >>> split_top_level("(1,8,19), (2,7,13)"), split_top_level("E_{1},E_{2}")
    (['(1,8,19)', '(2,7,13)'], ['E_{1}', 'E_{2}'])
    """
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _strip_physical(pred: str, unit: str | None) -> str:
    """Drop ``\\%``, ``^\\circ`` and a trailing unit from a prediction."""
    t = pred.strip().rstrip(".").strip()
    t = t.replace("$", "")  # minerva_math-72's gold has a stray "$ $" inside its box
    t = _NUMPY.sub(r"\\\1", t)  # Minerva golds in numpy notation: np.arcsin(10/13)
    t = t.replace("\\%", "").replace("%", "")
    t = re.sub(r"\^\s*\{?\\circ\}?|\\circ|°", "", t)
    while True:  # "1.6 \mathrm{~cm}", "10 \text{ km}" (possibly more than one)
        stripped = _TEXT_TAIL.sub("", t)
        if stripped == t or not stripped.strip():  # "\text{Yes}" is an answer, not a unit
            break
        t = stripped
    if unit:
        bare = unit.strip().strip("$").strip()
        if bare and t.endswith(bare) and t[: -len(bare)].strip():
            t = t[: -len(bare)]
    return t.strip()


class Grader:
    """Grades completions for one benchmark rule, with a shared time-bounded verifier."""

    def __init__(self, rule: str | GradingRule = "math", *, verifier: Verifier | None = None
                 ) -> None:
        if isinstance(rule, str):
            if rule not in GRADING_RULES:
                raise ValueError(f"unknown grading rule '{rule}'; known: "
                                 f"{', '.join(GRADING_RULES)}")
            rule = GRADING_RULES[rule]
        self.rule = rule
        self.verifier = verifier if verifier is not None else grading_verifier()

    def grade(self, completion: str, gold: GoldAnswer) -> Verdict:
        r"""The verdict on one completion: its last ``\boxed{}`` against every accepted answer.

        >>> g = Grader("integer")
        >>> g.grade(r"So \boxed{25}.", GoldAnswer("025")).correct
        True
        >>> g.grade("25", GoldAnswer("025")).reason  # not boxed: not an answer
        'no boxed answer'
        """
        answer = extract_answer(completion)
        if not answer:
            return Verdict(False, answer, "no boxed answer")
        for accepted in gold.accepted:
            reason = self._equal(accepted, answer, gold)
            if reason:
                return Verdict(True, answer, reason)
        return Verdict(False, answer, "not equivalent")

    def equal(self, gold: str, pred: str, *, unit: str | None = None,
              abs_tol: float | None = None) -> bool:
        """Whether two bare answers are equal under this rule (gold first)."""
        return bool(self._equal(gold, pred, GoldAnswer(gold, unit=unit, abs_tol=abs_tol)))

    def _equal(self, gold: str, pred: str, row: GoldAnswer) -> str:
        """The name of the check that found them equal, or '' when none did."""
        rule = self.rule
        if rule.physical:
            gold = _latex_e_notation(_strip_physical(gold, row.unit))
            pred = _latex_e_notation(_strip_physical(pred, row.unit))
        g, p = as_number(gold), as_number(pred)
        if g is not None and p is not None:
            if rule.exact_numbers:
                return "numbers equal" if g == p else ""
            if row.abs_tol is not None and abs(g - p) <= row.abs_tol * 1.0001:
                return "within the row's tolerance"
            if math.isclose(g, p, rel_tol=rule.rel_tol, abs_tol=0.0):
                return "numbers within relative tolerance"
            if rule.physical:  # decided here: math-verify rounds to 6 decimals, so 5.3e-9
                return ""      # and 5.2e-9 would both be 0 to it
        if self.verifier.equivalent(gold, pred):
            return "math-verify"
        return self._parts_match(gold, pred, row)

    def _parts_match(self, gold: str, pred: str, row: GoldAnswer) -> str:
        """A multi-part answer in any order (``E_{1},E_{2}`` = ``E_{2}, E_{1}``).

        math-verify already compares numeric lists as sets; this extends that to parts it
        cannot order (symbols, expressions). Each gold part must match a different pred part.
        """
        gold_parts, pred_parts = split_top_level(gold), split_top_level(pred)
        if len(gold_parts) < 2 or len(gold_parts) != len(pred_parts) or len(gold_parts) > 16:
            return ""
        unused = list(pred_parts)
        for part in gold_parts:
            match = next((q for q in unused if q == part or self._equal(
                part, q, GoldAnswer(part, unit=row.unit, abs_tol=row.abs_tol))), None)
            if match is None:
                return ""
            unused.remove(match)
        return "parts match in some order"

    def close(self) -> None:
        self.verifier.close()
