"""``train/groups.jsonl``: one row per prompt per step, the file behind the report's histograms.

A trial's driver appends the rows (``runtime.metrics.group_rows`` computes them) and logs the
file as an artifact; the sweep report downloads and reads it. The format sits here, below both,
so that reading a sweep's results needs nothing from the runtime layer.

Each line is a JSON object: ``step``, ``prompt_id``, ``rewards``, ``cluster_sizes``,
``uncertainty`` (what f read), ``se``, ``factor``, ``num_clusters``, ``reward_mean``,
``zero_advantage``. Rows written before ``uncertainty`` existed have ``se`` only (it held what f
read); readers take both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["GROUPS_FILE", "append_group_rows", "read_group_rows", "truncate_group_rows"]

GROUPS_FILE = "groups.jsonl"


def append_group_rows(path: Path, step: int, rows: Sequence[dict[str, Any]]) -> None:
    """Append one line per row, each with ``step`` first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"step": step, **row}) + "\n")


def read_group_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path``; a torn last line (a killed trial) is dropped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_group_rows(path: Path, last_step: int) -> None:
    """Keep the rows up to ``last_step``: a resumed trial redoes the steps after its checkpoint."""
    if not path.exists():
        return
    kept = [r for r in read_group_rows(path) if r["step"] <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(path)
