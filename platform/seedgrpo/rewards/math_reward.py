r"""The verifiable reward of SEED-GRPO: 1.0 when the boxed final answer matches the gold answer.

docs/ALGORITHMS.md section 2, step 1 [paper]: the extracted final answer is checked against the
ground truth with math-verify. The answer is the content of the last ``\boxed{}``, the same
extraction that clustering uses, so a response's reward and its meaning cluster always agree.
A response without a boxed answer scores 0 (the paper's prompt asks for ``\boxed{}``).
Model output is only ever *parsed*; it is never evaluated as code.
"""

from __future__ import annotations

from seedgrpo.algorithms.answers import extract_answer
from seedgrpo.rewards.verifier import Verifier, default_verifier

__all__ = ["math_reward"]


def math_reward(completion: str, gold_answer: str, *, verifier: Verifier | None = None) -> float:
    r"""1.0 if the completion's last ``\boxed{}`` answer equals ``gold_answer`` under math-verify.

    Bounded in time: each check runs in the verifier's worker process and is cut off after
    ``verifier.timeout_s`` seconds (``TRAINING_TIMEOUT_S`` by default), scoring 0 and counting
    a timeout.

    >>> math_reward(r"The sum is \boxed{\dfrac{1}{2}}.", "0.5")
    1.0
    >>> math_reward("The answer is 25.", "025")  # no \boxed{}: not an answer
    0.0
    """
    if not isinstance(completion, str) or not isinstance(gold_answer, str):
        raise ValueError("completion and gold_answer must both be str")
    if not gold_answer.strip():
        raise ValueError("gold_answer is empty; every training and benchmark row needs one")
    answer = extract_answer(completion)
    if answer is None or not answer:
        return 0.0
    check = verifier if verifier is not None else default_verifier()
    return 1.0 if check.equivalent(gold_answer.strip(), answer) else 0.0
