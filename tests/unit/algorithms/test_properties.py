"""Property tests (hypothesis): ranges, monotonicity and conservation laws of the algorithms."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from seedgrpo.algorithms import (
    cluster_answers,
    extract_answer,
    group_advantages,
    modulate,
    seed_grpo_advantages,
    semantic_entropy,
)

FNS = ["none", "linear", "exp", "focal", "inverse"]
finite_lp = st.floats(min_value=-50.0, max_value=0.0, allow_nan=False)


@st.composite
def groups(draw, min_size: int = 2, max_size: int = 16):
    g = draw(st.integers(min_size, max_size))
    ids = draw(st.lists(st.integers(0, g - 1), min_size=g, max_size=g))
    lps = draw(st.lists(finite_lp, min_size=g, max_size=g))
    rewards = draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=g, max_size=g))
    return ids, lps, rewards


@settings(max_examples=200, deadline=None)
@given(groups(), st.sampled_from(["rao", "discrete"]))
def test_se_within_zero_and_log_g(group, estimator: str) -> None:
    ids, lps, _ = group
    se = semantic_entropy(ids, lps, estimator)
    assert 0.0 <= se <= math.log(len(ids)) + 1e-9


@settings(max_examples=200, deadline=None)
@given(groups())
def test_kuhn_mc_is_non_negative_and_finite(group) -> None:
    ids, lps, _ = group
    se = semantic_entropy(ids, lps, "kuhn_mc")
    assert se >= 0.0 and math.isfinite(se)


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 50.0), st.floats(0.0, 50.0), st.sampled_from(FNS),
       st.floats(0.1, 5.0))
def test_factor_in_unit_interval_and_non_increasing(x1, x2, fn, gamma) -> None:
    lo, hi = sorted((x1, x2))
    f_lo, f_hi = modulate(lo, fn, gamma), modulate(hi, fn, gamma)
    assert 0.0 <= f_hi <= f_lo <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=32))
def test_dr_grpo_advantages_sum_to_zero(rewards) -> None:
    assert abs(sum(group_advantages(rewards, "dr_grpo"))) < 1e-9 * max(1.0, len(rewards) * 10)


@settings(max_examples=200, deadline=None)
@given(groups(), st.floats(0.0, 2.0), st.sampled_from(FNS))
def test_seed_advantages_are_scaled_group_advantages(group, alpha, fn) -> None:
    ids, lps, rewards = group
    adv, info = seed_grpo_advantages(rewards, ids, lps, alpha=alpha, fn=fn)
    base = group_advantages(rewards, "dr_grpo")
    assert 0.0 <= info["factor"] <= 1.0
    for a, b in zip(adv, base, strict=True):
        assert math.isclose(a, b * info["factor"], abs_tol=1e-12)
    assert abs(sum(adv)) < 1e-9


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=2, max_size=20))
def test_cluster_ids_numbered_by_first_appearance(answers) -> None:
    ids = cluster_answers(answers, "exact")
    highest = -1
    for cid in ids:
        assert cid <= highest + 1  # a new cluster always takes the next id
        highest = max(highest, cid)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="\\boxed{}x1 ", max_size=200))
def test_extract_answer_never_raises_and_is_a_substring(text) -> None:
    answer = extract_answer(text)
    assert answer is None or answer in text


brace_free = st.text(alphabet=st.characters(blacklist_characters="{}\\"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(brace_free, min_size=1, max_size=5), brace_free, brace_free)
def test_extract_answer_last_box_wins(answers, before, after) -> None:
    text = before + " ".join(f"\\boxed{{{a}}}" for a in answers) + after
    assert extract_answer(text) == answers[-1].strip()
