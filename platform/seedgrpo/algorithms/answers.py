r"""Final-answer extraction: the content of the last ``\boxed{...}``.

SEED-GRPO clusters responses by their final answer and the paper's prompt asks for it "within
\boxed{}" (docs/ALGORITHMS.md section 2, step 3, [paper] / [3p]). Extraction is one linear
pass with a brace stack, so a megabyte of output or ten thousand unclosed ``\boxed{`` cost the
same as a short answer: model output is never trusted to be well formed.
"""

from __future__ import annotations

__all__ = ["extract_answer"]

_BOXED = "\\boxed{"


def extract_answer(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` whose braces balance, stripped; else ``None``.

    "Last" is by opening position among the boxes that close, so a response cut off inside a
    second ``\boxed{`` still yields its earlier, complete answer. Escaped braces ``\{`` and ``\}``
    are content, not structure (``\boxed{\{1, 2\}}`` is the set ``\{1, 2\}``).

    >>> extract_answer(r"so x = \boxed{\frac{1}{2}}.")
    '\\frac{1}{2}'
    >>> extract_answer(r"\boxed{3} then \boxed{ 4 }")
    '4'
    >>> extract_answer(r"\boxed{5} and a cut-off \boxed{6")
    '5'
    >>> extract_answer("no box here") is None
    True
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    # Stack of (content_start, is_boxed) for every open brace.
    stack: list[tuple[int, bool]] = []
    best_start = -1
    best: tuple[int, int] | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if text.startswith(_BOXED, i):
                stack.append((i + len(_BOXED), True))
                i += len(_BOXED)
                continue
            i += 2  # skip the escaped character: \{ and \} are not structure
            continue
        if ch == "{":
            stack.append((i + 1, False))
        elif ch == "}" and stack:
            start, is_boxed = stack.pop()
            if is_boxed and start > best_start:
                best_start, best = start, (start, i)
        i += 1
    if best is None:
        return None
    return text[best[0] : best[1]].strip()
