"""The task-metric group: `--metric SPEC` (the family and its settings inline, or a TOML file)
and `--task-gate 'NAME>=X'` (repeatable); it builds what `api.validate` takes (`metric`,
`task_gates`, `metric_base_dir`) or, for `build`, dotted recipe overrides.

`--metric` reads:
- `KIND[,KEY=VALUE,...]` or `kind=KIND,KEY=VALUE,...`: the `[validate.metric]` table inline,
  each value read as TOML (`0.3`, `true`, `["a","b"]`), else kept as text
  (`--metric detection,score_threshold=0.3,output=output0`);
- `FILE.toml` (or any existing file): a TOML file holding a `[validate.metric]` table (a
  recipe will do), a `[metric]` table, or the table's keys at its top level.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnship.core.errors import DataError

__all__ = ["TaskMetricArgs", "parse_metric_text", "parse_task_gate"]

_GATE = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(>=|<=)\s*(\S+)\s*$")


def parse_task_gate(text: str) -> tuple[str, str]:
    """`"det_f1>=0.95"` -> `("det_f1", ">= 0.95")` (the recipe's form); `DataError` if bad."""
    match = _GATE.match(text)
    if not match:
        raise DataError(
            f"--task-gate '{text}': expected NAME>=NUMBER or NAME<=NUMBER, "
            "e.g. --task-gate 'det_f1>=0.95' or --task-gate 'cer<=0.02'"
        )
    name, op, value = match.groups()
    return name, f"{op} {value}"


def _split_items(text: str) -> list[str]:
    """Split at commas outside brackets and quotes (`charset=["a","b"],blank=0`)."""
    items, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_metric_text(text: str) -> dict[str, Any] | Path:
    """`--metric`'s value as the metric's table, or the path of a TOML file holding one."""
    from nnship.core import toml

    if "=" not in text and (text.endswith(".toml") or Path(text).is_file()):
        return Path(text)
    table: dict[str, Any] = {}
    for i, item in enumerate(_split_items(text)):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            if i:
                raise DataError(
                    f"--metric '{text}': '{item}' is not KEY=VALUE (only the first item may be "
                    "the family alone, e.g. detection,score_threshold=0.3)"
                )
            key, value = "kind", item
        if not key or key in table:
            raise DataError(f"--metric '{text}': {'empty' if not key else 'repeated'} key")
        table[key] = toml.parse_literal_or_text(value.strip())
    if "kind" not in table:
        raise DataError(
            f"--metric '{text}': name the family first (classification, detection, map, "
            "sequence, embedding, signal, callable), e.g. --metric detection,score_threshold=0.3"
        )
    return table


@dataclass(frozen=True)
class TaskMetricArgs:
    """`--task-gate` always; `--metric` when `metric` (a build takes its metric from the
    recipe's `[validate.metric]`, `--set validate.metric.KEY=VALUE` changes it)."""

    metric: bool = True

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("task metric")
        if self.metric:
            group.add_argument(
                "--metric", metavar="SPEC",
                help="the task metric to judge by: KIND[,KEY=VALUE...] (e.g. detection,"
                "score_threshold=0.3,output=output0) or a TOML file with a [validate.metric] "
                "table; replaces the recipe's",
            )  # fmt: skip
        group.add_argument(
            "--task-gate", dest="task_gates", action="append", default=[],
            metavar="'NAME>=X'",
            help="fail a row whose task metric value NAME is below (>=) or above (<=) X, "
            "e.g. 'det_f1>=0.95' or 'cer<=0.02'; repeatable",
        )  # fmt: skip

    def metric_spec(self, args: argparse.Namespace) -> dict[str, Any] | Path | None:
        """`--metric` as a table or a file path (None when not given)."""
        text = getattr(args, "metric", None)
        return parse_metric_text(text) if text else None

    def task_gates(self, args: argparse.Namespace) -> dict[str, str]:
        """`--task-gate` items as {name: ">= x"} (a later one for the same name wins)."""
        return dict(parse_task_gate(text) for text in args.task_gates)

    def base_dir(self, args: argparse.Namespace, recipe: Path | None) -> Path | None:
        """Where the metric's relative user-function paths resolve: the recipe's folder when
        the metric is the recipe's; None (the API's default) when `--metric` gives it."""
        if getattr(args, "metric", None) is None and recipe is not None:
            return Path(recipe).parent
        return None

    def overrides(self, args: argparse.Namespace) -> dict[str, str]:
        """`--task-gate` items as dotted recipe keys (`validate.gates.task.det_f1`)."""
        return {
            f"validate.gates.task.{name}": bound for name, bound in self.task_gates(args).items()
        }
