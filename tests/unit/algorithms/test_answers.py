"""extract_answer: table-driven cases grouped by what they exercise, then hostile input."""

from __future__ import annotations

import time

import pytest

from seedgrpo.algorithms import extract_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # plain and nested braces
        (r"The answer is \boxed{42}.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\boxed{ 7 }", "7"),
        # the last box wins
        (r"first \boxed{1}, finally \boxed{2}", "2"),
        # escaped braces are content: the set {1, 2}
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        # a box cut off by the token limit does not hide the earlier complete one
        (r"\boxed{5} but wait \boxed{6", "5"),
        # no box at all
        ("The answer is 42.", None),
        (r"\boxed{", None),
        ("", None),
        # an empty box is an empty answer, not None
        (r"\boxed{}", ""),
        # \boxed inside another group
        (r"$x = \boxed{3}$", "3"),
    ],
)
def test_extract_answer_cases(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        extract_answer(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hostile",
    [
        "\\boxed{" * 100_000,  # 700 KB of unclosed boxes
        "{" * 500_000 + "}" * 500_000,  # a megabyte of nesting
        "\\boxed{" + "{" * 200_000 + "1" + "}" * 200_001,  # one very deep box
        "x" * 2_000_000,  # 2 MB of text without a box
    ],
)
def test_extract_answer_is_linear_on_hostile_input(hostile: str) -> None:
    start = time.monotonic()
    extract_answer(hostile)
    # A linear scan of ~1-2 MB takes well under a second; a quadratic one would take minutes.
    assert time.monotonic() - start < 10.0
