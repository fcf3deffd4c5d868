"""`nnship compare`: gate a new report against a stored (committed) one."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnship.cli.options import JsonArgs

THRESHOLD_FLAGS = (
    ("--max-top1-drop", "max_top1_drop", "accuracy (or top-1 agreement) loss, percentage points"),
    ("--max-cosine-drop", "max_cosine_drop", "drop of the worst mean cosine similarity"),
    ("--max-sqnr-drop", "max_sqnr_drop", "drop of the worst SQNR, dB"),
    ("--max-latency-regression", "max_latency_regression", "p50 latency increase, ms"),
    ("--max-size-increase", "max_size_increase", "size increase, MB"),
)
JSON = JsonArgs("write the checks as JSON")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="check a new report against a stored baseline report (CI regression gate)",
        description=(
            "Compare CURRENT report against STORED (e.g. baselines/v1.2/report.json), row by "
            "row (rows matched by label). Thresholds are absolute in the unit shown, or relative "
            "to the stored value with a trailing % (e.g. --max-latency-regression 10%). Metrics "
            "without a threshold are shown, not gated; task metric values are compared by "
            "name (--max-task-drop NAME=X). Refuses reports of different models or data "
            "(--allow-mismatch), of differently configured task metrics "
            "(--allow-metric-mismatch) and latency gates across different hardware "
            "(--allow-hardware-mismatch). Appends the Markdown summary to $GITHUB_STEP_SUMMARY "
            "when set."
        ),
        epilog="Exit codes: 0 no regression, 1 a threshold was crossed, 2 usage or input error.",
    )
    parser.add_argument("stored", type=Path, metavar="STORED.json", help="the stored report")
    parser.add_argument("current", type=Path, metavar="CURRENT.json", help="the new report")
    for flag, _, text in THRESHOLD_FLAGS:
        parser.add_argument(flag, metavar="X|X%", help=text)
    parser.add_argument("--max-task-drop", action="append", default=[], metavar="NAME=X|X%",
                        help="worsening of task metric value NAME (a drop, or a rise for cer, "
                        "rel_error) in its own unit or %%, e.g. det_f1=0.01; repeatable")  # fmt: skip
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="compare reports of different models or data anyway")  # fmt: skip
    parser.add_argument("--allow-metric-mismatch", action="store_true",
                        help="compare reports whose task metrics are configured differently")  # fmt: skip
    parser.add_argument("--allow-hardware-mismatch", action="store_true",
                        help="gate latency across different hardware anyway (flagged)")  # fmt: skip
    parser.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the summary here")
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.core.fileio import write_text_atomic
    from nnship.validate.compare import CompareThresholds, Threshold

    thresholds = CompareThresholds(
        **{
            key: Threshold.parse(getattr(args, key), name=flag)
            for flag, key, _ in THRESHOLD_FLAGS
            if getattr(args, key) is not None
        },
        max_task_drop=_task_thresholds(args.max_task_drop),
    )
    result = api.compare(
        args.stored,
        args.current,
        thresholds,
        allow_mismatch=args.allow_mismatch,
        allow_hardware_mismatch=args.allow_hardware_mismatch,
        allow_metric_mismatch=args.allow_metric_mismatch,
    )
    markdown = result.to_markdown()
    if args.markdown:
        write_text_atomic(args.markdown, markdown)
    JSON.write(args, result.to_dict())
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    print(markdown, end="")
    return 0 if result.passed else 1


def _task_thresholds(items: list[str]) -> dict:
    """`["det_f1=0.01", "cer=10%"]` -> {name: Threshold}; `ReportError` naming a bad item."""
    from nnship.core.errors import ReportError
    from nnship.validate.compare import Threshold

    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ReportError(
                f"--max-task-drop '{item}': expected NAME=X or NAME=X%, e.g. det_f1=0.01"
            )
        out[name.strip()] = Threshold.parse(value, name=f"--max-task-drop {name.strip()}")
    return out
