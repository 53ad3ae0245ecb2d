"""The gradient-variance probe on the tiny model (no DeepSpeed; that is in the integration
tests): what it measures, that it is seeded, and that it leaves the model as it found it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seedgrpo.algorithms.diagnostics import projected_variance
from seedgrpo.learner.batch import TrainSample
from seedgrpo.learner.gradient_probe import (
    RandomProjector,
    probe_parameters,
    project_responses,
    response_gradient,
)
from seedgrpo.models import load_causal_lm
from seedgrpo.models.tiny import tiny_model_dir

PROMPT = [5, 9, 17, 33, 70]
SETTINGS = {"pad_id": 0, "aggregation": "dr_grpo", "max_response_len": 8,
            "mean_response_len": 4.0, "temperature": 1.0}


@pytest.fixture(scope="module")
def model(model_cache: Path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend (0.1 s vs 1 s a call)
    yield load_causal_lm(tiny_model_dir("tiny-llama", str(model_cache))).eval()
    torch.set_num_threads(threads)


def _sample(response: list[int], advantage: float) -> TrainSample:
    return TrainSample(PROMPT, response, advantage, [0.0] * len(response))


def _probe(model, samples, *, seed: int = 7, directions: int = 16, include=None):
    return project_responses(model, samples, include or [True] * len(samples),
                             directions=directions, seed=seed, **SETTINGS)


def test_probe_layer_is_the_last_decoder_layer_and_the_norm(model) -> None:
    names = [n for n, _ in probe_parameters(model)]
    last = len(model.get_decoder().layers) - 1
    assert names and all(n.startswith((f"layers.{last}.", "norm.")) for n in names)
    assert "norm.weight" in names


def test_zero_advantage_projects_to_zero_and_identical_responses_have_no_variance(model
                                                                                 ) -> None:
    rows = _probe(model, [_sample([40, 41, 42], 0.0), _sample([40, 41, 42], 0.5),
                          _sample([40, 41, 42], 0.5), _sample([90, 12], -0.5)])
    assert rows[0] == [0.0] * 16  # A = 0: the gradient is exactly 0
    assert rows[1] == rows[2] and any(v != 0.0 for v in rows[1])
    assert projected_variance([rows[1], rows[2]]) == 0.0
    assert projected_variance([rows[1], rows[3]]) > 0.0


def test_excluded_responses_are_not_measured(model) -> None:
    rows = _probe(model, [_sample([40, 41], 1.0), _sample([50], -1.0)], include=[True, False])
    assert rows[1] is None and rows[0] is not None


def test_seeded_and_the_same_whatever_the_block_size(model) -> None:
    samples = [_sample([40, 41, 42], 0.5), _sample([90, 12], -0.5), _sample([7], 0.25)]
    first = _probe(model, samples, seed=3)
    assert _probe(model, samples, seed=3) == first
    assert _probe(model, samples, seed=4) != first
    # one response per block draws the directions again for each: the same directions
    one_by_one = project_responses(model, samples, [True] * 3, directions=16, seed=3,
                                   block_bytes=1, **SETTINGS)
    np.testing.assert_allclose(one_by_one, first, rtol=1e-5, atol=1e-5)


def test_the_projections_estimate_squared_gradient_distances(model) -> None:
    """E[(z . v)^2] = ||v||^2: with many directions, the projected distance between two
    responses' gradients is close to the exact one on the probe parameters."""
    samples = [_sample([40, 41, 42], 0.5), _sample([90, 12, 3, 4], -0.5)]
    params = [p for _, p in probe_parameters(model)]
    exact = [torch.cat([g.reshape(-1) for g in response_gradient(model, s, params, **SETTINGS)])
             for s in samples]
    distance = float(((exact[0] - exact[1]) ** 2).sum())
    rows = np.asarray(_probe(model, samples, directions=1024))
    estimate = float(((rows[0] - rows[1]) ** 2).mean())
    assert distance > 0.0
    assert estimate == pytest.approx(distance, rel=0.15)  # sd sqrt(2 / 1024) = 4.4%
    # and projected_variance of two rows is half their squared distance over K
    assert projected_variance(rows) == pytest.approx(estimate / 2)


def test_the_model_is_left_as_it_was(model) -> None:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    _probe(model, [_sample([40, 41, 42], 0.5), _sample([90, 12], -0.5)])
    for n, p in model.named_parameters():
        assert p.grad is None, n  # nothing accumulated into .grad
        assert p.requires_grad == flags[n], n  # the frozen weights are unfrozen again
        assert torch.equal(p, before[n]), n


def test_projector_rejects_no_directions() -> None:
    with pytest.raises(ValueError, match="directions is 0"):
        RandomProjector([10], 0, seed=1)
