"""Training data: the synthetic task, JSON Lines files, templates, pools and the sampler."""

from __future__ import annotations

import ast
import operator
from pathlib import Path

import pytest

from seedgrpo.config.sections import DataConfig, ModelConfig, SyntheticDataConfig
from seedgrpo.data import (
    DataError,
    GoldAnswer,
    Problem,
    PromptSampler,
    build_pools,
    generate_arithmetic,
    load_jsonl_problems,
    render_prompt,
)
from seedgrpo.models import load_tokenizer, resolve_model_dir

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(expression: str) -> int:
    """An independent check of the generator's answers: walk Python's syntax tree (no eval)."""
    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Constant)
        return int(node.value)

    return walk(ast.parse(expression, mode="eval").body)


@pytest.mark.parametrize("ops", [["+", "-"], ["+", "-", "*"], ["*"]])
def test_synthetic_answers_are_right(ops: list[str]) -> None:
    cfg = SyntheticDataConfig(num_problems=200, num_operands=3, max_operand=12, operations=ops)
    problems = generate_arithmetic(cfg, seed=7)
    assert len({p.problem for p in problems}) == 200
    for p in problems:
        expression = p.problem.removeprefix("Compute ").removesuffix(".")
        assert int(p.answer) == _evaluate(expression), p
        assert p.solution.endswith(f"\\boxed{{{p.answer}}}.")


def test_synthetic_is_seeded() -> None:
    cfg = SyntheticDataConfig(num_problems=50)
    assert generate_arithmetic(cfg, seed=1) == generate_arithmetic(cfg, seed=1)
    assert generate_arithmetic(cfg, seed=1) != generate_arithmetic(cfg, seed=2)


def test_synthetic_capacity_is_checked_at_load() -> None:
    # 3 x 3 operand pairs x 1 operator = 9 distinct problems
    with pytest.raises(ValueError, match="allow only 9 distinct problems"):
        SyntheticDataConfig(num_problems=10, max_operand=3, operations=["+"])


def test_jsonl_reads_the_benchmark_files(shared_data: Path) -> None:
    rows = load_jsonl_problems(shared_data / "math500.jsonl")
    assert len(rows) == 500 and rows[0].id == "test/precalculus/807.json"
    assert rows[0].solution  # math500 rows carry solutions (usable as shots)


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ('{"problem": "x", "answer": "1"}\n{broken\n', {}, r"x.jsonl:2: not valid JSON"),
        ('{"question": "x", "answer": "1"}\n', {}, r"no field 'problem'; the row has answer, "
                                                   r"question \(set data.problem_field"),
        ('{"question": "x", "final": " "}\n', {"problem_field": "question",
                                                "answer_field": "final"}, "'final' is empty"),
        ("[1, 2]\n", {}, "must be a JSON object"),
        ("\n\n", {}, "holds no rows"),
    ],
)
def test_jsonl_errors_name_file_line_and_field(tmp_path: Path, content, kwargs, message) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_jsonl_problems(path, **kwargs)


def test_jsonl_custom_fields(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "2+2?", "final": 4}\n')
    (row,) = load_jsonl_problems(path, problem_field="question", answer_field="final")
    assert row == Problem("q-1", "2+2?", GoldAnswer("4"), None)


def test_jsonl_rows_keep_every_gold_field_benchmarks_read(tmp_path: Path) -> None:
    """Training rows and benchmark rows go through one converter: accepted alternatives, a
    unit and a tolerance survive into the problem (a held-out row is graded with them)."""
    path = tmp_path / "q.jsonl"
    path.write_text('{"problem": "x?", "answer": "2", "answers": ["2", "two"], "unit": "m", '
                    '"error": 0.5}\n{"problem": "y?", "answer": "3", "error": -1}\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: field 'error' is -1; it must be >= 0"):
        load_jsonl_problems(path)
    path.write_text(path.read_text().splitlines()[0] + "\n")
    (row,) = load_jsonl_problems(path)
    assert row.gold == GoldAnswer("2", ("two",), "m", 0.5)
    assert row.answer == "2"


def test_pools_are_disjoint_and_fixed_by_seed() -> None:
    cfg = DataConfig(heldout_size=20, fewshot=2, synthetic=SyntheticDataConfig(num_problems=100))
    pools = build_pools(cfg, seed=3)
    ids = [p.id for p in pools.train] + [p.id for p in pools.heldout] + [p.id for p in pools.shots]
    assert len(ids) == len(set(ids)) == 100
    assert (len(pools.heldout), len(pools.shots)) == (20, 2)
    assert build_pools(cfg, seed=3) == pools


def test_pools_refuse_shots_without_solutions(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(f'{{"problem": "p{i}", "answer": "{i}"}}\n' for i in range(5)))
    cfg = DataConfig(source="jsonl", path=str(path), heldout_size=1, fewshot=1)
    with pytest.raises(DataError, match="only 0 training rows have a solution"):
        build_pools(cfg, seed=0)


def test_hf_dataset_source_through_the_real_datasets_library(tmp_path: Path) -> None:
    """data.source hf with a local dataset directory: the same `datasets.load_dataset` call a
    hub id makes (this machine cannot reach the hub), its columns checked, its rows trained on."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "train.jsonl").write_text("".join(
        f'{{"question": "{i}+1?", "final": {i + 1}, "solution": "{i}+1={i + 1}. '
        f'\\\\boxed{{{i + 1}}}"}}\n' for i in range(10)))
    cfg = DataConfig(source="hf", path=str(tmp_path / "ds"), split="train",
                     problem_field="question", answer_field="final", heldout_size=2, fewshot=1)
    pools = build_pools(cfg, seed=0)
    assert (len(pools.train), len(pools.heldout), len(pools.shots)) == (7, 2, 1)
    assert {p.answer for p in pools.train + pools.heldout + pools.shots} == {
        str(i) for i in range(1, 11)}
    with pytest.raises(DataError, match="no column 'problem'; it has question, final, "
                                        "solution"):
        build_pools(DataConfig(source="hf", path=str(tmp_path / "ds"), split="train",
                               answer_field="final"), seed=0)
    with pytest.raises(DataError, match="split 'test'.*cannot be loaded"):
        build_pools(DataConfig(source="hf", path=str(tmp_path / "ds"), split="test"), seed=0)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_tokenizer(resolve_model_dir(ModelConfig(source="tiny-random", name="tiny-llama",
                                                         cache_dir=str(cache))))


def test_templates(tiny_tokenizer) -> None:
    problem = Problem("p", "Compute 2 + 3.", GoldAnswer("5"))
    shot = Problem("s", "Compute 1 + 1.", GoldAnswer("2"),
                   "1 + 1 = 2. The answer is \\boxed{2}.")
    qwen = render_prompt(problem, "qwen_math", tiny_tokenizer, [shot])
    assert qwen == ("<|system|>\nPlease reason step by step, and put your final answer within "
                    "\\boxed{}.<|end|>\n<|user|>\nCompute 1 + 1.<|end|>\n<|assistant|>\n"
                    "1 + 1 = 2. The answer is \\boxed{2}.<|end|>\n<|user|>\nCompute 2 + 3.<|end|>"
                    "\n<|assistant|>\n")
    r1 = render_prompt(problem, "r1", tiny_tokenizer)
    assert r1.endswith("User: Compute 2 + 3.\nAssistant: <think>") and "\\boxed{answer}" in r1
    assert render_prompt(problem, "plain", tiny_tokenizer) == "Compute 2 + 3.\n"
    with pytest.raises(ValueError, match="has no solution text"):
        render_prompt(problem, "plain", tiny_tokenizer, [problem])


def test_every_template_the_config_accepts_renders(tiny_tokenizer) -> None:
    """The config's list (config/catalogue.py) and the renderer cannot drift apart."""
    import typing

    from seedgrpo.config.catalogue import PromptTemplate

    problem = Problem("p", "Compute 2 + 3.", GoldAnswer("5"))
    for template in typing.get_args(PromptTemplate):
        assert "Compute 2 + 3." in render_prompt(problem, template, tiny_tokenizer)
    with pytest.raises(ValueError, match="known: qwen_math, r1, plain"):
        render_prompt(problem, "chatml", tiny_tokenizer)


def test_sampler_covers_each_epoch_and_resumes_exactly() -> None:
    sampler = PromptSampler(7, seed=5)
    first = [sampler.next_indices(3) for _ in range(2)]  # 6 of epoch 0
    state = sampler.state_dict()
    rest = [sampler.next_indices(3) for _ in range(4)]
    flat = [i for batch in first + rest for i in batch]
    assert sorted(flat[:7]) == list(range(7)) and sorted(flat[7:14]) == list(range(7))
    resumed = PromptSampler(7, seed=5)
    resumed.load_state_dict(state)
    assert [resumed.next_indices(3) for _ in range(4)] == rest
    with pytest.raises(ValueError, match="the data or seed changed"):
        PromptSampler(8, seed=5).load_state_dict(state)
