"""semantic_entropy and cluster_answers, with the arithmetic written out."""

from __future__ import annotations

import math

import pytest

from seedgrpo.algorithms import cluster_answers, semantic_entropy
from seedgrpo.algorithms.clustering import AnswerEquivalence


# -- semantic entropy ------------------------------------------------------------------------
def test_rao_uniform_two_clusters() -> None:
    # logprobs equal -> w = 1/4 each -> p = (0.5, 0.5) -> SE = ln 2
    assert semantic_entropy([0, 0, 1, 1], [0.0] * 4, "rao") == pytest.approx(math.log(2))


def test_rao_kuhn_discrete_two_to_one() -> None:
    # ids [0, 0, 1], equal weights -> p = (2/3, 1/3)
    # rao      = -(2/3 ln 2/3 + 1/3 ln 1/3)          = 0.636514
    # kuhn_mc  = -(1/2)(ln 2/3 + ln 1/3) = (0.405465 + 1.098612) / 2 = 0.752039
    # discrete = same p as rao here                    = 0.636514
    ids, lps = [0, 0, 1], [0.0, 0.0, 0.0]
    assert semantic_entropy(ids, lps, "rao") == pytest.approx(0.636514, abs=1e-6)
    assert semantic_entropy(ids, lps, "kuhn_mc") == pytest.approx(0.752039, abs=1e-6)
    assert semantic_entropy(ids, None, "discrete") == pytest.approx(0.636514, abs=1e-6)


def test_rao_uses_the_likelihood_weights() -> None:
    # lp = (ln 3, ln 1) -> w = (3/4, 1/4) -> SE = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335
    se = semantic_entropy([0, 1], [math.log(3), 0.0], "rao")
    assert se == pytest.approx(0.562335, abs=1e-6)
    # discrete ignores the log-probs: two singleton clusters -> ln 2
    assert semantic_entropy([0, 1], [math.log(3), 0.0], "discrete") == pytest.approx(math.log(2))


def test_far_apart_logprobs_stay_finite() -> None:
    # lp = (0, -1000): p_1 = e^-1000 underflows in linear space; log space keeps it exact.
    # rao ~ 0 (one cluster holds all the mass); kuhn_mc = -(1/2)(0 + (-1000)) = 500
    assert semantic_entropy([0, 1], [0.0, -1000.0], "rao") == pytest.approx(0.0, abs=1e-12)
    assert semantic_entropy([0, 1], [0.0, -1000.0], "kuhn_mc") == pytest.approx(500.0)


def test_kuhn_mc_can_exceed_log_g() -> None:
    # p = (0.999, 0.001): -(1/2)(ln 0.999 + ln 0.001) = 3.4544 > ln 2 (documented)
    lps = [math.log(0.999), math.log(0.001)]
    assert semantic_entropy([0, 1], lps, "kuhn_mc") == pytest.approx(3.4544, abs=1e-4)


@pytest.mark.parametrize("estimator", ["rao", "kuhn_mc", "discrete"])
def test_one_cluster_is_certain(estimator: str) -> None:
    assert semantic_entropy([0, 0, 0], [-1.0, -5.0, -0.1], estimator) == 0.0


@pytest.mark.parametrize("estimator", ["rao", "discrete"])
def test_all_singletons_reach_log_g(estimator: str) -> None:
    # G = 4 distinct answers, equal weights -> SE = ln 4 = SE_max
    assert semantic_entropy([0, 1, 2, 3], [0.0] * 4, estimator) == pytest.approx(math.log(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_ids": [0, 1], "logprobs": None, "estimator": "rao"}, "needs logprobs"),
        ({"cluster_ids": [0, 1], "logprobs": None, "estimator": "kuhn_mc"}, "needs logprobs"),
        ({"cluster_ids": [0, 1], "logprobs": [0.0]},
         "cluster_ids has 2 entries but logprobs has 1"),
        ({"cluster_ids": [0, 1], "logprobs": [0.0, float("nan")]}, r"logprobs\[1\] is nan"),
        ({"cluster_ids": [0, 1], "logprobs": [0.0, float("-inf")]}, r"logprobs\[1\] is -inf"),
        ({"cluster_ids": [], "logprobs": []}, "cluster_ids is empty"),
        ({"cluster_ids": [0], "logprobs": [0.0]}, "at least 2"),
        ({"cluster_ids": [0, 1], "estimator": "shannon"}, "unknown semantic-entropy estimator"),
        ({"cluster_ids": [0, "a"], "estimator": "discrete"}, "must be integers"),
    ],
)
def test_semantic_entropy_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        semantic_entropy(**kwargs)


# -- clustering ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        # whitespace never matters for exact
        (["1/2", " 1 / 2", "1/2 "], [0, 0, 0]),
        # different spellings stay apart under exact (the paper's rule)
        (["1/2", "0.5", r"\frac{1}{2}"], [0, 1, 2]),
        # None answers are singletons, each its own id
        ([None, "3", None, "3"], [0, 1, 2, 1]),
        ([None, None], [0, 1]),
    ],
)
def test_cluster_exact(answers: list, expected: list[int]) -> None:
    assert cluster_answers(answers, "exact") == expected


@pytest.fixture(scope="module")
def equivalence(strict_verifier) -> AnswerEquivalence:
    """math-verify, injected as the scorer injects it (the algorithm layer starts no worker)."""
    return strict_verifier.answer_equivalence()


def test_cluster_math_verify_merges_equivalent_forms(equivalence) -> None:
    answers = ["1/2", "0.5", None, r"\frac{1}{2}", "3", r"\dfrac12", "025", "25"]
    # 1/2, 0.5, \frac{1}{2}, \dfrac12 -> cluster 0; None -> 1; 3 -> 2; 025 and 25 -> 3
    assert cluster_answers(answers, "math_verify", equivalence=equivalence) == [
        0, 0, 1, 0, 2, 0, 3, 3]


def test_cluster_math_verify_sees_the_answer_as_written(equivalence) -> None:
    # removing spaces would turn "2 \cdot x" into "2\cdotx", which is not LaTeX for 2x
    assert cluster_answers(["2 \\cdot x", "2x", "x \\cdot 2"], "math_verify",
                           equivalence=equivalence) == [0, 0, 0]


def test_cluster_math_verify_needs_an_injected_equivalence_test() -> None:
    with pytest.raises(ValueError, match="'math_verify' needs an equivalence test"):
        cluster_answers(["1", "2"], "math_verify")


def test_cluster_math_verify_runs_the_injected_test() -> None:
    """Any callables will do: here "same parity" is the equivalence."""
    parity = AnswerEquivalence(parse=lambda text, left: text.isdigit(),
                               equivalent=lambda a, b, left: int(a) % 2 == int(b) % 2)
    assert cluster_answers(["1", "3", "2", "x", "4"], "math_verify",
                           equivalence=parity) == [0, 0, 1, 2, 1]


def test_cluster_accepts_a_generator() -> None:
    assert cluster_answers((a for a in ["1", "1", "2"]), "exact") == [0, 0, 1]


def test_numpy_cluster_ids_are_integers() -> None:
    import numpy as np

    assert semantic_entropy(np.array([0, 0, 1, 1]), estimator="discrete") == pytest.approx(
        math.log(2))


def test_cluster_math_verify_keeps_different_values_apart(equivalence) -> None:
    assert cluster_answers(["2", "3", "x+1", "1+x"], "math_verify",
                           equivalence=equivalence) == [0, 1, 2, 2]


@pytest.mark.parametrize(
    ("answers", "method", "message"),
    [
        ("123", "exact", "not one string"),
        ([1, 2], "exact", r"answers\[0\] is int"),
        ([], "exact", "answers is empty"),
        (["1"], "exact", "answers has 1 response"),
        (iter([]), "exact", "answers is empty"),
        (["1", "2"], "semantic", "unknown clustering method 'semantic'; known: exact, math_verify"),
    ],
)
def test_cluster_rejects_bad_input(answers, method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_answers(answers, method)
