"""The gates group: one flag per validation gate (`--max-top1-drop X`, `--min-cosine X`, ...),
worded for where the gates apply (`validate`, a recipe's `[validate.gates]`, the tuner's
constraints); it builds the gates given, as `Gates` field -> threshold."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

__all__ = ["GATES", "GateArgs"]

GATES: dict[str, tuple[str, str]] = {
    "max_top1_drop": (
        "fail a row whose top-1 drop exceeds this many percentage points",
        "percentage points of accuracy lost vs the baseline (without labels: 100 - top-1 "
        "agreement)",
    ),
    "min_top1_agreement": (
        "fail a row whose top-1 agreement with the baseline is below this (%%)",
        "percent of samples with the baseline's top-1",
    ),
    "min_top5_agreement": (
        "fail a row whose top-5 agreement is below this (%%)",
        "percent of samples with the baseline's top-1 in the candidate's top 5",
    ),
    "min_cosine": (
        "fail a row whose mean cosine similarity to the baseline is below this",
        "mean per-sample cosine similarity, worst output",
    ),
    "min_sqnr_db": (
        "fail a row whose SQNR is below this (dB)",
        "signal-to-quantization-noise ratio in dB, worst output",
    ),
    "max_abs_error": (
        "fail a row whose largest absolute error exceeds this",
        "largest absolute output difference",
    ),
    "max_latency_ms": (
        "fail a row whose p50 latency exceeds this (milliseconds)",
        "latency in ms at the first latency batch size (p50 unless --latency-percentile)",
    ),
    "max_size_mb": (
        "fail a row whose size on disk exceeds this (MB, 10**6 bytes)",
        "size on disk in MB (10^6 bytes)",
    ),
}
"""`Gates` field -> (help as a gate that fails a row, help as `nnship validate` words it)."""

Wording = Literal["row", "constraint", "validate"]


@dataclass(frozen=True)
class GateArgs:
    """The gate flags, in an argument group titled `title`. `wording`: "row" (a gate fails a
    report row: `build`), "constraint" (an artifact is infeasible: `tune`), "validate" (the
    metric's definition, plus `--latency-percentile`)."""

    title: str
    wording: Wording = "row"

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title)
        for name, (row_help, validate_help) in GATES.items():
            text = {
                "row": row_help,
                "constraint": row_help.replace("fail a row", "infeasible: an artifact"),
                "validate": validate_help,
            }[self.wording]
            group.add_argument(f"--{name.replace('_', '-')}", dest=f"gate_{name}", type=float,
                               metavar="X", help=text)  # fmt: skip
        if self.wording == "validate":
            group.add_argument("--latency-percentile", dest="gate_latency_percentile", type=int,
                               choices=[50, 90, 99],
                               help="percentile --max-latency-ms applies to (default 50)")  # fmt: skip

    def values(self, args: argparse.Namespace) -> dict[str, float]:
        """The gates given on the command line, `Gates` field -> threshold."""
        names = [*GATES, "latency_percentile"]
        given = {name: getattr(args, f"gate_{name}", None) for name in names}
        return {name: value for name, value in given.items() if value is not None}
