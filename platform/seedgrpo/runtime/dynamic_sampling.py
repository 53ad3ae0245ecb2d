"""DAPO's dynamic sampling (``train.dynamic_sampling``): which drawn groups a step learns from.

A group whose G rewards are all equal has zero advantage under every estimator here, so it
moves no weight; it only dilutes the batch. With dynamic sampling a step draws rounds of P
prompts, generates and scores each, and stops once P groups carry signal (rewards not all
equal) or after ``train.dynamic_sampling_max_rounds`` rounds. The learners then get exactly P
groups, because the learner split (ranks, mini-batches) is fixed to P x G responses:

- the first P groups with signal, in the order they were drawn (DAPO drops the surplus of the
  last round);
- when the rounds gave fewer, the step is filled with the first-drawn all-equal groups (zero
  advantage: they count in the loss normalisation but move nothing) and
  ``train/signal_groups_short`` says how many were missing.

The learned batch is the picked groups in draw order (round, then place in the round), so a
step's batch is a pure function of what was drawn. Everything here is pure (no Ray): the trial
drives the rounds (``TrainingLoop._draw_until_signal``) and a zero-CPU Ray task runs
``assemble`` next to the object store, so completions never pass through the trial driver.

The metrics of the assembled batch describe the batch that was learned from (rewards,
uncertainty, factors, lengths of the P picked groups); what the step spent (clustering cost,
scoring time) is summed over every drawn group; ``train/reward_mean_drawn`` and
``train/signal_frac_drawn`` describe everything drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.metrics import rollout_metrics
from seedgrpo.runtime.scoring import ScoredBatch, clustering_metrics

__all__ = ["Selection", "has_signal", "needs_another_round", "select_groups", "merge_meta",
           "assemble", "SAMPLING_METRICS"]

#: What a dynamic-sampling step adds to the step's metrics.
SAMPLING_METRICS = ("train/prompts_drawn", "train/signal_groups_short",
                    "train/reward_mean_drawn", "train/signal_frac_drawn")

RoundRewards = Sequence[Sequence[Sequence[float]]]  # [round][group][response]


def has_signal(rewards: Sequence[float]) -> bool:
    """Whether a group's rewards differ (DAPO keeps a group when 0 < accuracy < 1).

    >>> has_signal([1.0, 0.0, 0.0]), has_signal([0.0, 0.0, 0.0]), has_signal([1.0, 1.0])
    (True, False, False)
    """
    return bool(rewards) and max(rewards) > min(rewards)


def _signal_count(rounds: RoundRewards) -> int:
    return sum(has_signal(g) for groups in rounds for g in groups)


def needs_another_round(rounds: RoundRewards, target: int, max_rounds: int) -> bool:
    """Whether the step draws one more round of prompts: fewer than ``target`` groups with
    signal so far, and fewer than ``max_rounds`` rounds drawn.

    >>> needs_another_round([[[0, 1], [0, 0]]], target=2, max_rounds=3)
    True
    >>> needs_another_round([[[0, 1], [0, 0]], [[1, 0], [1, 1]]], target=2, max_rounds=3)
    False
    >>> needs_another_round([[[0, 0]], [[1, 1]]], target=1, max_rounds=2)
    False
    """
    return len(rounds) < max_rounds and _signal_count(rounds) < target


@dataclass(frozen=True)
class Selection:
    """The groups a step learns from. ``picks``: ``(round, group)`` of each, in batch order;
    ``short``: groups of the target that carry no signal (the fill); ``drawn``: prompts
    drawn (groups generated and scored) for the step."""

    picks: list[tuple[int, int]]
    short: int
    drawn: int


def select_groups(rounds: RoundRewards, target: int) -> Selection:
    """The first ``target`` groups with signal in draw order, filled with the first-drawn
    all-equal groups when there are fewer; the picks come back in draw order.

    >>> s = select_groups([[[0, 0], [0, 1]], [[1, 1], [1, 0], [0, 1]]], target=2)
    >>> s.picks, s.short, s.drawn
    ([(0, 1), (1, 1)], 0, 5)
    >>> s = select_groups([[[0, 0], [0, 1]], [[1, 1], [0, 0]]], target=2)
    >>> s.picks, s.short, s.drawn
    ([(0, 0), (0, 1)], 1, 4)
    """
    if target < 1:
        raise ValueError(f"a step learns from at least one group, not {target}")
    order = [(r, i) for r, groups in enumerate(rounds) for i in range(len(groups))]
    signal = [p for p in order if has_signal(rounds[p[0]][p[1]])][:target]
    fill = [p for p in order if not has_signal(rounds[p[0]][p[1]])][:target - len(signal)]
    if len(signal) + len(fill) < target:
        raise ValueError(f"{len(order)} groups were drawn; a step needs {target}")
    return Selection(sorted(signal + fill), target - len(signal), len(order))


def merge_meta(rounds: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """One generation record for a step drawn in rounds (``rounds[r]``: each rollout
    worker's ``{"version", "seconds", "tokens"}``): the oldest weights that generated any of
    it (its staleness), the rounds' times added (each round waits for its slowest worker),
    and every token generated.

    >>> merge_meta([[{"version": 3, "seconds": 2.0, "tokens": 10},
    ...              {"version": 3, "seconds": 1.0, "tokens": 5}],
    ...             [{"version": 4, "seconds": 0.5, "tokens": 7}]])
    {'version': 3, 'seconds': 2.5, 'tokens': 22}
    """
    metas = [m for r in rounds for m in r]
    return {"version": min(m["version"] for m in metas),
            "seconds": sum(max(m["seconds"] for m in r) for r in rounds if r),
            "tokens": sum(m["tokens"] for m in metas)}


def assemble(selection: Selection, groups: Sequence[Sequence[Sequence[Completion]]],
             scored: Sequence[ScoredBatch]) -> tuple[list[list[Completion]], ScoredBatch]:
    """The learned batch from the rounds' groups (``groups[r]``, prompt order) and scores:
    the picked groups, their scores and per-prompt rows, and the step's metrics (see the
    module docstring)."""
    if len(groups) != len(scored):
        raise ValueError(f"{len(groups)} rounds of groups but {len(scored)} of scores")
    picked = [list(groups[r][i]) for r, i in selection.picks]
    scores = [scored[r].scores[i] for r, i in selection.picks]
    rows = [dict(scored[r].rows[i]) for r, i in selection.picks]
    every = [s for batch in scored for s in batch.scores]
    rewards = [x for s in every for x in s.rewards]
    # verifier totals (cumulative counters) and anything else: the last round's
    metrics = dict(scored[-1].metrics)
    metrics.update(clustering_metrics(every))  # what clustering cost: every drawn group
    if any("time/score_s" in b.metrics for b in scored):  # the scorer's own time, every round
        metrics["time/score_s"] = sum(b.metrics.get("time/score_s", 0.0) for b in scored)
    metrics.update(rollout_metrics(picked, scores))  # the batch that was learned from
    metrics.update({
        "train/prompts_drawn": float(selection.drawn),
        "train/signal_groups_short": float(selection.short),
        "train/reward_mean_drawn": sum(rewards) / len(rewards) if rewards else 0.0,
        "train/signal_frac_drawn": sum(has_signal(s.rewards) for s in every) / len(every)
        if every else 0.0,
    })
    return picked, ScoredBatch(scores=scores, metrics=metrics, rows=rows)
