"""The latency group: `--threads`, `--runs`, `--time-budget`, `--warmup`,
`--latency-batch-sizes`; it builds the `LatencyConfig` fields given (see
`nnship.validate.config.LatencyConfig` for the defaults: 200 runs, warm-up until stable, batch
1)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nnship.core.errors import DataError

if TYPE_CHECKING:
    from nnship.validate.config import LatencyConfig

__all__ = ["LatencyArgs"]


class LatencyArgs:
    """Latency flags shared by `validate` and `bench`."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("latency")
        group.add_argument("--threads", type=int, help="inference threads (default: runtime's)")
        group.add_argument("--runs", type=int, help="timed runs after warm-up (default 200)")
        group.add_argument(
            "--time-budget",
            type=float,
            metavar="SECONDS",
            help="time for this long instead of --runs",
        )
        group.add_argument(
            "--warmup", type=int, metavar="N", help="max warm-up runs (default 200; stops earlier "
            "once the median of the last 10 runs is stable)",
        )  # fmt: skip
        group.add_argument(
            "--latency-batch-sizes", metavar="N[,N...]", help="batch sizes to time (default 1)"
        )

    def overrides(self, args: argparse.Namespace) -> dict[str, Any]:
        """The `LatencyConfig` fields the flags set (`--warmup N` caps the warm-up at N runs
        and lowers its minimum to min(N, 5))."""
        out: dict[str, Any] = {}
        for flag, key in (
            ("threads", "threads"),
            ("runs", "runs"),
            ("time_budget", "time_budget_s"),
        ):
            if getattr(args, flag, None) is not None:
                out[key] = getattr(args, flag)
        if getattr(args, "warmup", None) is not None:
            out["max_warmup_runs"] = args.warmup
            out["min_warmup_runs"] = min(args.warmup, 5)
        if getattr(args, "latency_batch_sizes", None):
            try:
                out["batch_sizes"] = [int(v) for v in args.latency_batch_sizes.split(",")]
            except ValueError as exc:
                raise DataError(
                    f"--latency-batch-sizes '{args.latency_batch_sizes}': expected e.g. 1,8,32"
                ) from exc
        return out

    def config(
        self, args: argparse.Namespace, *, batch_sizes: list[int] | None = None, verb: str
    ) -> LatencyConfig:
        """A `LatencyConfig` of the flags (`batch_sizes`, when given, replaces
        `--latency-batch-sizes`); an invalid value is a `DataError` "Bad <verb> option: ..."."""
        from pydantic import ValidationError

        from nnship.validate.config import LatencyConfig
        from nnship.validate.report import summarize_errors

        fields = self.overrides(args)
        if batch_sizes:
            fields["batch_sizes"] = batch_sizes
        try:
            return LatencyConfig(**fields)
        except ValidationError as exc:
            raise DataError(f"Bad {verb} option: {summarize_errors(exc)}") from exc
