"""``seedgrpo-eval``: a model on the math benchmarks, the way training trials are evaluated.

    seedgrpo-eval --model bundled:smollm2-135m-instruct --benchmarks aime24,amc23,math500 \\
        --limit 20 --data-dir /path/to/benchmarks

``--model`` is a local HF directory, an HF hub id, ``bundled:NAME``, ``tiny-random:NAME`` (a
test model) or a ``seedgrpo-train`` checkpoint (a trial's output directory, its
``checkpoints/``, or one ``step_N`` tag in it). Prints one row per benchmark, writes
``summary.json`` and ``samples.jsonl`` to ``--output-dir``, and logs both to MLflow when
``--mlflow-uri`` is given. Generation and grading are the code a training trial runs
(``seedgrpo.evaluation.runner``), in this process instead of on Ray actors.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from seedgrpo.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, configure_logging
from seedgrpo.config.catalogue import BENCHMARK_SPECS, BUNDLED_MODELS, TINY_MODELS
from seedgrpo.config.overrides import strip_optional
from seedgrpo.config.sections import (
    DataConfig,
    EvalConfig,
    ModelConfig,
    RolloutConfig,
    TrainConfig,
)
from seedgrpo.models.checkpoint_files import UntrustedCheckpoint

__all__ = ["main", "parse_model_spec"]

logger = logging.getLogger("seedgrpo.eval")


# Flags that are config fields: the field's type, choices, default and description are the
# flag's (the description is written once, in the schema). (flag, section, field, CLI default)
_SCHEMA = object()  # "the schema's default"
# seedgrpo-eval evaluates benchmark files, never the held-out training split (the schema's
# default), so by default every standard benchmark; and benchmark prompts (OlympiadBench,
# few-shot) need more context than the small training task's max_seq_len
_ALL_BENCHMARKS = ",".join(BENCHMARK_SPECS)
_EVAL_MAX_SEQ_LEN = 4096
_SCHEMA_FLAGS: tuple[tuple[str, type[BaseModel], str, Any], ...] = (
    ("--benchmarks", EvalConfig, "benchmarks", _ALL_BENCHMARKS),
    ("--limit", EvalConfig, "limit", _SCHEMA),
    ("--samples", EvalConfig, "samples", _SCHEMA),
    ("--temperature", EvalConfig, "temperature", _SCHEMA),
    ("--top-p", EvalConfig, "top_p", _SCHEMA),
    ("--max-new-tokens", EvalConfig, "max_new_tokens", _SCHEMA),
    ("--template", EvalConfig, "template", _SCHEMA),
    ("--data-dir", EvalConfig, "data_dir", _SCHEMA),
    ("--max-seq-len", ModelConfig, "max_seq_len", _EVAL_MAX_SEQ_LEN),
    ("--dtype", ModelConfig, "dtype", None),  # unset: a checkpoint's own, else the schema's
    ("--cache-dir", ModelConfig, "cache_dir", _SCHEMA),
    ("--engine", RolloutConfig, "engine", _SCHEMA),
    ("--seed", TrainConfig, "seed", _SCHEMA),
)
_EVAL_FIELDS = tuple(f for _, model, f, _ in _SCHEMA_FLAGS if model is EvalConfig)


def _add_schema_flag(p: argparse.ArgumentParser, flag: str, model: type[BaseModel], field: str,
                     default: Any) -> None:
    """``flag`` for ``model.field``: its type or choices, its description as the help, and
    its default unless the CLI names its own. A list field takes comma-separated values."""
    info = model.model_fields[field]
    inner, _ = strip_optional(info.annotation)
    if default is _SCHEMA:
        default = info.get_default(call_default_factory=True)
    kwargs: dict[str, Any] = {}
    if typing.get_origin(inner) is typing.Literal:
        kwargs["choices"] = typing.get_args(inner)
    elif inner in (int, float):
        kwargs["type"] = inner
    shown = ",".join(default) if isinstance(default, list) else default
    help_text = (info.description or "").replace("%", "%%")  # argparse formats help with %
    schema_default = info.get_default(call_default_factory=True)
    if shown is not None:
        help_text += f" (default: {shown})"
    elif schema_default is not None:  # --dtype
        help_text += f" (default: a checkpoint's own, else {schema_default})"
    p.add_argument(flag, default=shown, help=help_text, **kwargs)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seedgrpo-eval",
        description="Evaluate a model on AIME24, AMC23, MATH500, Minerva-Math, OlympiadBench "
                    "(greedy pass@1, or avg@k / pass@k / maj@k with --samples).",
    )
    p.add_argument("--model", required=True,
                   help="PATH | HF_ID | bundled:NAME | tiny-random:NAME | CHECKPOINT_DIR")
    for flag, model, field, default in _SCHEMA_FLAGS:
        _add_schema_flag(p, flag, model, field, default)
    p.add_argument("--output-dir", default=None,
                   help="where summary.json and samples.jsonl go (default runs/eval/<model>)")
    p.add_argument("--mlflow-uri", default=None, help="log the run here (e.g. sqlite:///mlflow.db)")
    p.add_argument("--experiment-name", default="seedgrpo-eval",
                   help="MLflow experiment (default seedgrpo-eval)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="load a seedgrpo-train checkpoint another user owns (loading unpickles "
                        "it, which runs any code its owner put there); default: refuse it")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _check_checkpoint_owner(path: Path) -> None:
    """Refuse a checkpoint another user owns (its root and the tag it exports) before DeepSpeed
    unpickles it; raises ``UntrustedCheckpoint``."""
    from seedgrpo.evaluation.export import find_checkpoint_root
    from seedgrpo.models.checkpoint_files import check_checkpoint_owner, read_latest

    root = find_checkpoint_root(path)
    if root is None:
        return
    latest = read_latest(root)
    tag = path.name if path.parent == root else (latest[0] if latest else None)
    check_checkpoint_owner(root, tag, opt_in="pass --trust-checkpoint")


def parse_model_spec(spec: str, cache_dir: str | None = None) -> ModelConfig | Path:
    """A ``ModelConfig`` for a model, or the path of a seedgrpo-train checkpoint.

    >>> parse_model_spec("bundled:smollm2-135m-instruct").source
    'bundled'
    >>> parse_model_spec("Qwen/Qwen2.5-Math-1.5B").name
    'Qwen/Qwen2.5-Math-1.5B'
    """
    from seedgrpo.evaluation.export import find_checkpoint_root

    for prefix, source, known in (("bundled:", "bundled", BUNDLED_MODELS),
                                  ("tiny-random:", "tiny-random", TINY_MODELS)):
        if spec.startswith(prefix):
            name = spec[len(prefix):]
            if name not in known:
                raise ValueError(f"--model {spec}: unknown {source} model '{name}'; known: "
                                 f"{', '.join(known)}")
            return ModelConfig(source=source, name=name, cache_dir=cache_dir)
    path = Path(spec).expanduser()
    if path.is_dir() and find_checkpoint_root(path) is not None:
        return path
    if path.exists() and not (path / "config.json").is_file():
        raise ValueError(f"--model {spec}: a directory but neither an HF model (no "
                         "config.json) nor a seedgrpo-train checkpoint (no experiment.json and "
                         "latest)")
    if not path.exists() and (spec.startswith((".", "/", "~")) or spec.count("/") > 1):
        raise ValueError(f"--model {spec}: no such directory (a hub id looks like org/name)")
    return ModelConfig(source="hf", name=spec, cache_dir=cache_dir)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[-80:] or "model"


def _table(metrics: dict[str, float], benchmarks: Sequence[str], counts: dict[str, int],
           k: int) -> str:
    cols = ["pass@1"] + ([f"avg@{k}", f"pass@{k}", f"maj@{k}"] if k > 1 else [])
    keys = ["pass_at_1"] + ([f"avg_at_{k}", f"pass_at_{k}", f"maj_at_{k}"] if k > 1 else [])
    head = f"{'benchmark':<15}{'n':>5}" + "".join(f"{c:>9}" for c in cols) + \
        f"{'len':>8}{'trunc':>7}"
    lines = [head, "-" * len(head)]
    for b in benchmarks:
        lines.append(f"{b:<15}{counts[b]:>5}" + "".join(
            f"{100 * metrics[f'eval/{b}/{key}']:>8.1f}%" for key in keys) +
            f"{metrics[f'eval/{b}/response_len_mean']:>8.0f}"
            f"{100 * metrics[f'eval/{b}/truncated_frac']:>6.0f}%")
    if len(benchmarks) > 1:
        lines.append(f"{'average':<15}{sum(counts.values()):>5}" + "".join(
            f"{100 * metrics[f'eval/avg/{key}']:>8.1f}%" for key in keys))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    from seedgrpo.data import DataError
    from seedgrpo.evaluation import (
        BenchmarkGrader,
        eval_sampling,
        load_benchmark,
        prepare_benchmark,
        run_evaluation,
    )
    from seedgrpo.evaluation.export import export_checkpoint
    from seedgrpo.models import ModelLoadError, load_tokenizer, resolve_model_dir
    from seedgrpo.rollout.factory import choose_engine, make_engine

    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    try:
        if "heldout" in names:
            raise ValueError("heldout is the training run's held-out split; seedgrpo-eval "
                             "evaluates benchmark files (use seedgrpo-train's evaluation)")
        eval_cfg = EvalConfig(**{**{f: getattr(args, f) for f in _EVAL_FIELDS},
                                 "benchmarks": names})
        if args.max_seq_len <= args.max_new_tokens:
            raise ValueError(f"--max-seq-len {args.max_seq_len} leaves no room for a prompt "
                             f"with --max-new-tokens {args.max_new_tokens}")
        model = parse_model_spec(args.model, args.cache_dir)
        if isinstance(model, Path) and not args.trust_checkpoint:
            _check_checkpoint_owner(model)
        benchmarks = [load_benchmark(n, data_dir=args.data_dir, limit=args.limit,
                                     seed=args.seed) for n in names]
    except (ValidationError, ValueError, UntrustedCheckpoint) as err:  # DataError: a ValueError
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors()) \
            if isinstance(err, ValidationError) else str(err)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    t0 = time.monotonic()
    grade = BenchmarkGrader()
    engine = None
    try:
        step: int | None = None
        if isinstance(model, Path):
            exported = export_checkpoint(model)
            model_dir, step = exported.model_dir, int(exported.tag.removeprefix("step_"))
            template = args.template or exported.config.eval.template or \
                exported.config.data.template
            dtype = args.dtype or exported.config.model.dtype
        else:
            model_dir = resolve_model_dir(model)
            template = args.template or DataConfig.model_fields["template"].default
            dtype = args.dtype or model.dtype
        tokenizer = load_tokenizer(model_dir)
        prepared = [prepare_benchmark(b, tokenizer, template=template,
                                      max_seq_len=args.max_seq_len,
                                      max_new_tokens=args.max_new_tokens) for b in benchmarks]
        engine = make_engine(choose_engine(args.engine, setting="--engine"), model_dir,
                             dtype=dtype, max_model_len=args.max_seq_len, seed=args.seed)

        output = Path(args.output_dir or Path("runs") / "eval" / _slug(args.model))
        output.mkdir(parents=True, exist_ok=True)
        samples_path = output / "samples.jsonl"
        samples_path.unlink(missing_ok=True)
        total = sum(len(b.problems) for b in benchmarks)
        print(f"evaluating {args.model} ({type(engine).__name__}, template {template}) on "
              f"{total} problems x {args.samples} sample(s)", flush=True)
        def progress(name: str, m: dict[str, float], seconds: float) -> None:
            print(f"  {name}: pass@1 {100 * m[f'eval/{name}/pass_at_1']:.1f}% "
                  f"({seconds:.0f} s)", flush=True)

        metrics = run_evaluation(prepared, eval_sampling(eval_cfg, args.seed),
                                 engine.generate, grade, samples_path=samples_path,
                                 on_benchmark=progress)
    except (ModelLoadError, DataError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        grade.close()
        if engine is not None:
            engine.close()  # vLLM's processes, before the interpreter's exit

    counts = {b.name: len(b.problems) for b in benchmarks}
    print(_table(metrics, names, counts, args.samples))
    summary = {"model": args.model, "model_dir": str(model_dir), "step": step,
               "template": template, "benchmarks": names, "problems": counts,
               "limit": args.limit, "samples": args.samples, "temperature": args.temperature,
               "max_new_tokens": args.max_new_tokens, "seed": args.seed,
               "minutes": round((time.monotonic() - t0) / 60, 2), "metrics": metrics}
    (output / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {output / 'summary.json'} and {samples_path}")
    if args.mlflow_uri:
        from mlflow.exceptions import MlflowException

        from seedgrpo.redact import redact_text, redact_uri
        from seedgrpo.tracking import MlflowRun

        config = {k: v for k, v in summary.items() if k not in ("metrics", "minutes")}
        try:
            with MlflowRun(args.mlflow_uri, args.experiment_name, run_name=_slug(args.model),
                           config=config, tags={"seedgrpo.kind": "eval"}) as run:
                run.log_metrics(step or 0, metrics)
                run.log_artifact(output / "summary.json")
                run.log_artifact(samples_path)
        except MlflowException as err:  # its message may echo the URI, password included
            print(f"error: MLflow at {redact_uri(args.mlflow_uri)} could not log the run: "
                  f"{redact_text(str(err))}; the results are in {output}", file=sys.stderr)
            return EXIT_FAILED
        print(f"logged to MLflow run {run.run_id} at {redact_uri(args.mlflow_uri)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
