"""The progress of a tune run on the terminal: a rich bar over trials with the best feasible
point per backend so far; one plain line per trial when not a terminal (CI logs) or quiet."""

from __future__ import annotations

from typing import Any

from nnship.core import progress
from nnship.tune.records import TrialRecord

__all__ = ["TuneProgress", "best_by_backend"]


def best_by_backend(records: list[TrialRecord]) -> dict[str, tuple[int, Any]]:
    """Backend -> (trial, its fastest feasible artifact)."""
    best: dict[str, tuple[int, Any]] = {}
    for record in records:
        for a in record.feasible_artifacts():
            if a.latency_ms_p50 is None:
                continue
            current = best.get(a.backend)
            if current is None or a.latency_ms_p50 < current[1].latency_ms_p50:
                best[a.backend] = (record.number, a)
    return best


def _best_text(records: list[TrialRecord]) -> str:
    parts = [
        f"{backend}: {a.precision} {a.latency_ms_p50:.3f} ms (trial {n})"
        for backend, (n, a) in sorted(best_by_backend(records).items())
    ]
    return "; ".join(parts) or "no feasible point yet"


def _line(record: TrialRecord) -> str:
    params = ", ".join(f"{k}={v}" for k, v in record.params.items())
    reused = sum(1 for s in record.stages.values() if s == "reused")
    text = f"trial {record.number} {record.state} ({record.duration_s or 0:.1f} s, {reused} stages reused) {params}"
    if record.reason:
        text += f": {record.reason}"
    return text


class TuneProgress:
    """`start(total, done, records)`, `trial_done(record, records)`, `stop()`."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._console = progress.console
        self._quiet = quiet or progress.is_quiet()
        self._live = not self._quiet and progress.is_live()
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int, done: int, records: list[TrialRecord]) -> None:
        if not self._live:
            self._console.print(f"tune: {done} of {total} trials finished before this run")
            return
        self._progress = progress.status_progress("tune", transient=False)
        self._progress.start()
        self._task = self._progress.add_task(
            "tune", total=total, completed=done, info=_best_text(records)
        )

    def trial_done(self, record: TrialRecord, records: list[TrialRecord]) -> None:
        if self._progress is not None:
            self._progress.console.print(_line(record), highlight=False)
            self._progress.update(self._task, advance=1, info=_best_text(records))
        elif not self._quiet:
            self._console.print(f"{_line(record)} | best: {_best_text(records)}", highlight=False)
        else:  # -q: one terse line per trial for CI logs
            self._console.print(f"trial {record.number} {record.state}", highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
