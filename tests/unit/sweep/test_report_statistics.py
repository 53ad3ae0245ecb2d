"""The sweep report's statistics end to end: a real MLflow SQLite store of trials with real
evaluation sample files, read back by ``write_report``.

Three configurations x 2 seeds: the `none` baseline, a configuration far better than it, and one
that differs on a single problem of a single seed. The numbers are set so every expected value
is computed by hand below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seedgrpo.sweep.report import ReportRow, configuration_statistics, write_report

METRIC = "eval/avg/pass_at_1"
AMC, AIME = 8, 10  # problems: amc23 with 4 samples each (avg@4), aime24 greedy


def _rows(seed: int, amc_correct: int, aime_correct: set[int]) -> list[dict[str, Any]]:
    """Sample rows as ``evaluation.summary.write_samples`` writes them. The aime24 subset
    differs by seed, as eval.limit draws it by train.seed."""
    rows = []
    for i in range(AMC):
        rows += [{"benchmark": "amc23", "id": f"amc-{i}", "sample": j, "problem": "...",
                  "gold": "1", "completion": "...", "answer": "1", "correct": j < amc_correct,
                  "reason": "", "response_len": 5, "truncated": False, "step": 2}
                 for j in range(4)]
    rows += [{"benchmark": "aime24", "id": f"aime-{seed}-{i}", "sample": 0, "problem": "...",
              "gold": "1", "completion": "...", "answer": "1", "correct": i in aime_correct,
              "reason": "", "response_len": 5, "truncated": False, "step": 2}
             for i in range(AIME)]
    return rows


def _metrics(amc_correct: int, aime_correct: set[int]) -> dict[str, float]:
    amc, aime = amc_correct / 4, len(aime_correct) / AIME
    return {"eval/amc23/pass_at_1": amc, "eval/amc23/avg_at_4": amc,
            "eval/aime24/pass_at_1": aime, METRIC: (amc + aime) / 2,
            "train/reward_mean": 0.5}


BASE_AIME = {0, 1}
TRIALS = [  # name, modulation, alpha, seed, amc23 correct of 4, aime24 correct problems
    ("none-s0", "none", None, 0, 1, BASE_AIME),
    ("none-s1", "none", None, 1, 1, BASE_AIME),
    ("linear-a0.5-s0", "linear", 0.5, 0, 3, set(range(8))),
    ("linear-a0.5-s1", "linear", 0.5, 1, 3, set(range(8))),
    ("linear-a0.1-s0", "linear", 0.1, 0, 1, BASE_AIME | {2}),
    ("linear-a0.1-s1", "linear", 0.1, 1, 1, BASE_AIME),
]


def _group_rows(new: bool) -> list[dict[str, Any]]:
    """Rows with ``uncertainty`` beside ``se``, ``grad_variance`` on diagnostic
    steps) and old ones (``se`` only): the report reads both."""
    if not new:
        return [{"step": 1, "se": 0.5, "factor": 0.8, "rewards": [1.0, 0.0]}]
    return [{"step": s, "prompt_id": f"p{i}", "rewards": [1.0, 0.0], "cluster_sizes": [1, 1],
             "uncertainty": 0.1 * i, "se": 0.2 * i, "factor": 1.0 - 0.05 * i,
             "num_clusters": 2, "reward_mean": 0.5, "zero_advantage": False,
             "grad_variance": 0.01 * i if s == 2 else None}
            for s in (1, 2) for i in range(4)]


def _store(tmp_path: Path) -> tuple[str, str]:
    from seedgrpo.sweep.tracking import PARENT_TAG, TRIAL_TAG
    from seedgrpo.tracking import MlflowRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = MlflowRun(uri, "sweep", run_name="sweep-1", config={})
    for number, (name, modulation, alpha, seed, amc, aime) in enumerate(TRIALS):
        algorithm: dict[str, Any] = {"modulation": modulation, "group_size": 4}
        varied = ["algorithm.modulation", "train.seed"]
        if alpha is not None:
            algorithm["alpha"] = alpha
            varied.insert(1, "algorithm.alpha")
        run = MlflowRun(uri, "sweep", run_name=name,
                        config={"algorithm": algorithm, "train": {"seed": seed}},
                        tags={PARENT_TAG: parent.run_id, TRIAL_TAG: name,
                              "seedgrpo.varied": ",".join(varied)})
        run.log_metrics(2, _metrics(amc, aime))
        trial_dir = tmp_path / name / "eval"
        trial_dir.mkdir(parents=True)
        early = trial_dir / "samples_step_000001.jsonl"  # an earlier evaluation: not read
        early.write_text(json.dumps(_rows(seed, 0, set())[0]) + "\n")
        final = trial_dir / "samples_step_000002.jsonl"
        final.write_text("".join(json.dumps(r) + "\n" for r in _rows(seed, amc, aime))
                         + '{"benchmark": "amc23", "id"')  # a torn last line
        run.log_artifact(early, "eval")
        run.log_artifact(final, "eval")
        if number < 2:  # the baseline's groups: one trial new rows with the diagnostic
            groups = tmp_path / name / "groups.jsonl"
            groups.write_text("".join(json.dumps(r) + "\n" for r in _group_rows(number == 0)))
            run.log_artifact(groups, "train")
            if number == 0:
                run.log_metrics(2, {"diag/gradvar_spearman_se": 0.4,
                                    "diag/gradvar_spearman_u": 0.6})
        run.finish()
    return uri, parent.run_id


@pytest.mark.slow  # a real SQLite MLflow with 6 runs: ~10-20 s on 2 loaded cores
def test_report_gives_intervals_the_paired_comparison_and_its_sentence(tmp_path: Path) -> None:
    uri, parent = _store(tmp_path)
    out = write_report(uri, parent, tmp_path / "report", metric=METRIC)
    summary = json.loads((out / "summary.json").read_text())
    configs = {c["configuration"]: c for c in summary["configurations"]}
    base = configs["algorithm.modulation=none"]
    strong = configs["algorithm.alpha=0.5, algorithm.modulation=linear"]
    weak = configs["algorithm.alpha=0.1, algorithm.modulation=linear"]

    # every configuration: an interval around its mean over seeds
    for c in configs.values():
        assert c["ci_low"] <= c["mean"] <= c["ci_high"]
        assert c["seeds_scored"] == 2 and c["eval_steps"] == [2]
    # the baseline: (1/4 + 2/10) / 2 on both seeds; its interval is the aime24 problems'
    # spread (2 of 10 right), nothing from the seeds, which agree
    assert base["mean"] == pytest.approx(0.225)
    assert base["ci_low"] < 0.2 and base["ci_high"] > 0.25
    assert base["is_baseline"] and base["delta_vs_baseline"] is None

    # strong: (3/4 + 8/10) / 2 - 0.225 = 0.55 on every resample of seeds; 28 differing cells
    # per pair of seeds: Monte Carlo p with the +1 correction = 1 / 10001
    assert strong["baseline"] == "algorithm.modulation=none"
    assert strong["delta_vs_baseline"] == pytest.approx(0.55)
    assert strong["delta_ci_low"] > 0.3 and strong["delta_ci_high"] < 0.8
    assert strong["p_value"] == pytest.approx(1 / 10001) and not strong["p_value_exact"]
    assert strong["distinguishable"] is True

    # weak: one aime24 problem of seed 0 flips: 1/10 x 1/2 (benchmarks) x 1/2 (seeds) = 0.025;
    # one differing cell: both sign patterns reach it, p = 1 exactly
    assert weak["delta_vs_baseline"] == pytest.approx(0.025)
    assert (weak["p_value"], weak["p_value_exact"]) == (1.0, True)
    assert weak["delta_ci_low"] <= 0 <= weak["delta_ci_high"]
    assert weak["distinguishable"] is False
    assert summary["statistics"]["resamples"] == 2000

    report = (out / "report.md").read_text()
    assert ("Of 2 configuration(s) compared with the `none` baseline, 1 differs from it by "
            "more than noise at this sweep's size") in report
    strong_line = next(line for line in report.splitlines()
                       if line.startswith("- **algorithm.alpha=0.5"))
    assert strong_line.endswith("distinguishable from noise at this sweep's size.")
    assert "+0.550" in strong_line and "p < 0.001, 2 seed(s) x 18 problems" in strong_line
    weak_line = next(line for line in report.splitlines()
                     if line.startswith("- **algorithm.alpha=0.1"))
    # 0.025 is under both the seed noise and the problem noise of this sweep: neither lever
    # alone reaches 80% power
    assert "not distinguishable from noise at this sweep's size." in weak_line
    assert "Neither more seeds alone nor more problems alone" in weak_line
    assert (weak["seeds_needed"], weak["problems_needed"]) == (None, None)
    # ... but both together would: the sentence says by how much
    assert weak["scale_needed"] > 1 and f"grow about {weak['scale_needed']:.0f}x" in weak_line
    # avg@4 on amc23, as the paper reports its small benchmarks, in the table and explained
    assert "eval/amc23/avg_at_4" in (out / "trials.csv").read_text().splitlines()[0]
    assert "`eval/amc23/avg_at_4`: pass@1 averaged over 4 samples" in report
    # the gradient-variance diagnostic: drawn because one trial logged it
    assert "![gradient_variance.png](gradient_variance.png)" in report
    assert (out / "gradient_variance.png").stat().st_size > 0
    assert (out / "uncertainty.png").stat().st_size > 0


def _record(name: str, modulation: str, varied: dict[str, str]) -> ReportRow:
    return ReportRow(name, name, "FINISHED", False, {**varied, "train.seed": "0"}, modulation,
                       0.5, 4, 0, {METRIC: 0.5}, 2,
                       eval_rows=[{"benchmark": "b", "id": "p", "correct": True}],
                       eval_step=2)


def test_the_baseline_shares_the_other_swept_values_and_its_absence_is_said() -> None:
    g4 = {"algorithm.group_size": "4"}
    g8 = {"algorithm.group_size": "8"}
    records = [_record("none-g4", "none", {**g4, "algorithm.modulation": "none"}),
               _record("none-g8", "none", {**g8, "algorithm.modulation": "none"}),
               _record("lin-g8", "linear", {**g8, "algorithm.modulation": "linear",
                                            "algorithm.alpha": "0.5"})]
    configs = {c["configuration"]: c for c in configuration_statistics(records, METRIC)}
    paired = configs["algorithm.alpha=0.5, algorithm.group_size=8, algorithm.modulation=linear"]
    assert paired["baseline"] == "algorithm.group_size=8, algorithm.modulation=none"
    assert paired["delta_vs_baseline"] == 0.0 and paired["p_value"] == 1.0

    alone = configuration_statistics([records[2]], METRIC)
    assert alone[0]["baseline"] is None and alone[0]["ci_low"] == 1.0


@pytest.mark.slow  # a real SQLite MLflow: ~5 s
def test_a_sweep_without_a_baseline_says_so(tmp_path: Path) -> None:
    from seedgrpo.sweep.tracking import PARENT_TAG, TRIAL_TAG
    from seedgrpo.tracking import MlflowRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = MlflowRun(uri, "sweep", run_name="sweep-1", config={})
    name, modulation, alpha, seed, amc, aime = TRIALS[2]
    run = MlflowRun(uri, "sweep", run_name=name,
                    config={"algorithm": {"modulation": modulation, "alpha": alpha}},
                    tags={PARENT_TAG: parent.run_id, TRIAL_TAG: name,
                          "seedgrpo.varied": "algorithm.alpha"})
    run.log_metrics(2, _metrics(amc, aime))
    path = tmp_path / "samples_step_000002.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(seed, amc, aime)))
    run.log_artifact(path, "eval")
    run.finish()
    report = (write_report(uri, parent.run_id, tmp_path / "r", metric=METRIC)
              / "report.md").read_text()
    assert "No `none` baseline (algorithm.modulation = none) among the trials" in report
    assert "gradient_variance.png" not in report  # no diagnostic logged: no plot


def test_a_verdict_names_what_the_comparison_cannot_see() -> None:
    """One seed measures no seed-to-seed noise, and trials last evaluated at different steps
    (a failed or early-stopped one) differ in training length too: the sentence says so."""
    from seedgrpo.sweep.report import _verdict

    c = {"configuration": "linear-a1", "baseline": "none", "delta_vs_baseline": 0.2,
         "delta_ci_low": 0.1, "delta_ci_high": 0.3, "p_value": 0.01, "paired_seeds": 1,
         "paired_problems": 32, "distinguishable": True, "seeds_needed": None,
         "problems_needed": None, "eval_steps": [2]}
    base = {"configuration": "none", "eval_steps": [4]}
    text = _verdict(c, base)
    assert "distinguishable from noise" in text
    assert "one seed, so seed-to-seed noise is not measured" in text
    assert "different steps (2, 4)" in text
    clean = _verdict({**c, "paired_seeds": 2, "eval_steps": [4]}, base)
    assert "Caveat" not in clean
