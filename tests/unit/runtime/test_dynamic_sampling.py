"""Dynamic sampling (DAPO): which drawn groups a step learns from, and what it logs (no Ray)."""

from __future__ import annotations

import pytest

from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.dynamic_sampling import (
    Selection,
    assemble,
    has_signal,
    merge_meta,
    needs_another_round,
    select_groups,
)
from seedgrpo.runtime.scoring import clustering_metrics, score_batch

ONE, ZERO = [1.0, 0.0], [0.0, 0.0]  # a group with signal, one without
ALL_RIGHT = [1.0, 1.0]


def test_has_signal_is_rewards_not_all_equal() -> None:
    assert has_signal([0.0, 1.0]) and has_signal([0.5, 0.0, 0.0])
    assert not has_signal([0.0, 0.0]) and not has_signal([1.0, 1.0, 1.0])
    assert not has_signal([])


def test_enough_signal_in_the_first_round_keeps_the_first_p_in_draw_order() -> None:
    s = select_groups([[ZERO, ONE, ONE, ALL_RIGHT, ONE]], target=2)
    assert s == Selection(picks=[(0, 1), (0, 2)], short=0, drawn=5)


def test_later_rounds_fill_up_and_the_surplus_of_the_last_is_dropped() -> None:
    rounds = [[ZERO, ONE, ZERO], [ALL_RIGHT, ZERO, ZERO], [ONE, ONE, ONE]]
    assert not needs_another_round(rounds, 3, max_rounds=5)  # 4 with signal >= 3
    assert needs_another_round(rounds[:2], 3, max_rounds=5)  # 1 with signal
    s = select_groups(rounds, target=3)
    assert s.picks == [(0, 1), (2, 0), (2, 1)] and s.short == 0 and s.drawn == 9


def test_cap_reached_fills_with_the_first_drawn_all_equal_groups() -> None:
    rounds = [[ZERO, ZERO, ONE], [ALL_RIGHT, ZERO, ZERO]]
    assert not needs_another_round(rounds, 3, max_rounds=2)  # the cap, not the target
    s = select_groups(rounds, target=3)
    # the one group with signal, and the first two all-equal ones; in draw order
    assert s.picks == [(0, 0), (0, 1), (0, 2)] and s.short == 2 and s.drawn == 6
    s = select_groups([[ZERO, ONE], [ONE, ZERO]], target=2)  # fill is not needed here
    assert s.picks == [(0, 1), (1, 0)] and s.short == 0


def test_no_signal_at_all_learns_the_first_round_and_counts_every_group_short() -> None:
    rounds = [[ZERO, ALL_RIGHT], [ZERO, ZERO], [ALL_RIGHT, ZERO]]
    s = select_groups(rounds, target=2)
    assert s == Selection(picks=[(0, 0), (0, 1)], short=2, drawn=6)


def test_selection_refuses_what_cannot_make_a_step() -> None:
    with pytest.raises(ValueError, match="at least one group"):
        select_groups([[ONE]], target=0)
    with pytest.raises(ValueError, match="1 groups were drawn; a step needs 2"):
        select_groups([[ONE]], target=2)


def test_meta_of_rounds_adds_their_times_and_keeps_the_oldest_version() -> None:
    merged = merge_meta([[{"version": 5, "seconds": 1.0, "tokens": 3},
                          {"version": 5, "seconds": 4.0, "tokens": 4}],
                         [{"version": 6, "seconds": 2.0, "tokens": 1},
                          {"version": 6, "seconds": 0.5, "tokens": 2}]])
    assert merged == {"version": 5, "seconds": 6.0, "tokens": 10}


def _completion(text: str, length: int, truncated: bool = False) -> Completion:
    return Completion(list(range(length)), text, [-0.5] * length, truncated)


def _group(*answers: str, length: int = 3) -> list[Completion]:
    return [_completion(f"so \\boxed{{{a}}}" if a else "no answer", length) for a in answers]


def test_assemble_from_real_scores_is_the_batch_of_the_picked_groups(strict_verifier) -> None:
    """Two rounds of real scored groups (gold 2): signal in round 0 group 1 and round 1 group
    0; the learned batch is exactly those groups with their own scores, and its metrics are
    those of scoring the learned batch alone (plus what the drawing cost)."""
    algo = AlgorithmConfig(alpha=1.0, clustering="exact", estimator="discrete")
    round0 = [_group("1", "1", "3", "3"), _group("2", "2", "5", "", length=5),
              _group("", "", "", "")]
    round1 = [_group("2", "7", "7", "7", length=2), _group("2", "2", "2", "2")]
    scored = [score_batch(round0, ["2"] * 3, algo, verifier=strict_verifier),
              score_batch(round1, ["2"] * 2, algo, verifier=strict_verifier)]
    for batch in scored:
        batch.metrics["time/score_s"] = 0.25
    rewards = [[s.rewards for s in b.scores] for b in scored]
    assert [has_signal(r) for rs in rewards for r in rs] == [False, True, False, True, False]
    selection = select_groups(rewards, target=2)
    assert selection.picks == [(0, 1), (1, 0)] and selection.short == 0

    groups, batch = assemble(selection, [round0, round1], scored)
    assert groups == [round0[1], round1[0]]
    assert batch.scores == [scored[0].scores[1], scored[1].scores[0]]
    assert batch.rows == [scored[0].rows[1], scored[1].rows[0]]
    assert all(any(a != 0 for a in advs) for advs in batch.advantages)
    alone = score_batch(groups, ["2", "2"], algo, verifier=strict_verifier)
    for name in ("train/reward_mean", "train/accuracy", "train/se_mean", "train/factor_mean",
                 "train/zero_adv_frac", "train/response_len_mean", "train/num_clusters_mean"):
        assert batch.metrics[name] == pytest.approx(alone.metrics[name]), name
    assert batch.metrics["train/reward_mean"] == pytest.approx(3 / 8)  # 2/4 and 1/4
    assert batch.metrics["train/zero_adv_frac"] == 0.0
    assert batch.metrics["train/prompts_drawn"] == 5.0
    assert batch.metrics["train/signal_groups_short"] == 0.0
    # everything drawn: 3 of 20 rewards right, 2 of 5 groups with signal
    assert batch.metrics["train/reward_mean_drawn"] == pytest.approx(
        (2 + 1 + 4) / 20)
    assert batch.metrics["train/signal_frac_drawn"] == pytest.approx(2 / 5)
    # the cost is every drawn group's
    every = scored[0].scores + scored[1].scores
    for name, value in clustering_metrics(every).items():
        assert batch.metrics[name] == value
    assert batch.metrics["time/score_s"] == pytest.approx(0.5)


def test_assemble_with_the_cap_reached_fills_with_zero_advantage_groups(strict_verifier
                                                                        ) -> None:
    algo = AlgorithmConfig(alpha=1.0, clustering="exact")
    rounds = [[_group("", "", "", ""), _group("3", "3", "3", "3")],
              [_group("2", "5", "5", "5"), _group("9", "9", "9", "9")]]
    scored = [score_batch(r, ["2", "2"], algo, verifier=strict_verifier) for r in rounds]
    selection = select_groups([[s.rewards for s in b.scores] for b in scored], target=2)
    groups, batch = assemble(selection, rounds, scored)
    assert selection.picks == [(0, 0), (1, 0)] and groups == [rounds[0][0], rounds[1][0]]
    assert batch.metrics["train/signal_groups_short"] == 1.0
    assert batch.metrics["train/zero_adv_frac"] == 0.5  # the fill moves nothing
    assert batch.advantages[0] == [0.0] * 4 and all(a != 0 for a in batch.advantages[1])
    with pytest.raises(ValueError, match="2 rounds of groups but 1 of scores"):
        assemble(selection, rounds, scored[:1])
