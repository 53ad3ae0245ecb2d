"""Meaning clusters: which of a group's G final answers say the same thing.

ALGORITHMS.md section 2, step 3. ``exact`` is the paper's rule ([3p]: whitespace-free string
equality); ``math_verify`` (ours, recommended) merges answers that math-verify finds equivalent,
so ``1/2``, ``0.5`` and ``\\frac{1}{2}`` share one cluster. A response without an answer is a
cluster of its own ([3p]), which makes unanswered groups maximally uncertain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from seedgrpo.algorithms._checks import check_group
from seedgrpo.algorithms.registry import Registry

__all__ = ["CLUSTERINGS", "cluster_answers"]

if TYPE_CHECKING:
    from seedgrpo.rewards.verifier import Verifier

ClusterFn = Callable[[Sequence[str | None], "Verifier | None"], list[int]]
CLUSTERINGS: Registry[ClusterFn] = Registry("clustering method")

_WHITESPACE = re.compile(r"\s+")


def _normalise(answer: str) -> str:
    return _WHITESPACE.sub("", answer.strip())


@CLUSTERINGS.register("exact")
def _cluster_exact(answers: Sequence[str | None], verifier: Verifier | None) -> list[int]:
    """Cluster by string equality after removing all whitespace. [3p]"""
    ids: list[int] = []
    seen: dict[str, int] = {}
    next_id = 0
    for answer in answers:
        if answer is None:
            ids.append(next_id)
            next_id += 1
            continue
        key = _normalise(answer)
        if key not in seen:
            seen[key] = next_id
            next_id += 1
        ids.append(seen[key])
    return ids


@CLUSTERINGS.register("math_verify")
def _cluster_math_verify(answers: Sequence[str | None], verifier: Verifier | None) -> list[int]:
    """Greedy clustering by math-verify equivalence against one representative per cluster.

    Each answer is compared with the representatives in creation order, representative first
    (math-verify's ``verify`` is asymmetric: gold first), and joins the first match. Identical
    strings are merged without calling math-verify. Calls are time-bounded by the reward
    module's worker, so hostile answers cannot stall a scorer. [ours]
    """
    from seedgrpo.rewards.verifier import default_verifier

    verifier = verifier if verifier is not None else default_verifier()
    ids: list[int] = []
    # (cluster id, whitespace-free key, the answer as written): math-verify sees the answer as
    # written, since removing spaces can change LaTeX ("\cdot x" is not "\cdotx").
    representatives: list[tuple[int, str, str]] = []
    next_id = 0
    for answer in answers:
        if answer is None:
            ids.append(next_id)
            next_id += 1
            continue
        key, text = _normalise(answer), answer.strip()
        match = next((cid for cid, rep_key, _ in representatives if rep_key == key), None)
        if match is None:
            for cid, _, rep_text in representatives:
                if verifier.equivalent(rep_text, text):
                    match = cid
                    break
        if match is None:
            match = next_id
            representatives.append((match, key, text))
            next_id += 1
        ids.append(match)
    return ids


def cluster_answers(answers: Sequence[str | None], method: str = "exact", *,
                    verifier: Verifier | None = None) -> list[int]:
    """Cluster id per answer, numbered 0, 1, ... in order of first appearance.

    ``exact``: strip, remove all whitespace, compare strings. ``math_verify``: equivalent under
    math-verify, checked by ``verifier`` (default: the process-wide one). ``None`` answers each
    get their own cluster.

    >>> cluster_answers(["1/2", " 1 / 2", None, "3", None])
    [0, 0, 1, 2, 3]
    """
    if isinstance(answers, str):
        raise ValueError("answers must be a sequence of answers (str or None), not one string")
    answers = list(answers)  # a generator would be used up by the checks below
    check_group(len(answers), name="answers")
    for i, answer in enumerate(answers):
        if answer is not None and not isinstance(answer, str):
            raise ValueError(f"answers[{i}] is {type(answer).__name__}; expected str or None")
    return CLUSTERINGS.get(method)(answers, verifier)
