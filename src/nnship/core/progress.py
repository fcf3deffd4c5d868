"""The one progress helper: rich progress bars on a terminal, silent when quiet or not a TTY."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)
_quiet = False


def configure_logging(verbosity: int = 0) -> None:
    """Set up logging: -q (verbosity < 0) warnings only, default info, -v debug."""
    global _quiet
    _quiet = verbosity < 0
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("onnxscript", "torch", "onnx_ir", "nncf", "onnxslim"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a progress bar labelled `description` (hidden when quiet/non-TTY)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    disable = _quiet or not console.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
    with progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def is_quiet() -> bool:
    """True after `configure_logging(-1)` (`-q`): progress is hidden, one line per step at most."""
    return _quiet


def is_live() -> bool:
    """True when progress bars are drawn: not quiet and stderr is a terminal."""
    return not _quiet and console.is_terminal


def status_progress(description: str, *, transient: bool = True) -> Progress:
    """A progress object for loops that update their own fields (e.g. loss, agreement, the
    best point so far): a bar, the count, `{task.fields[info]}`, elapsed time. `transient`
    bars vanish when done (default); the tuner's stays.

    Usage: `with status_progress("distill") as p: task = p.add_task("distill", total=n, info="")`.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not is_live(),
    )
