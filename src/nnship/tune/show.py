"""`nnship tune show`: read a tune folder's fronts and trials; optionally write tune.html."""

from __future__ import annotations

from pathlib import Path

from nnship.tune.records import read_pareto, read_trials
from nnship.tune.result import TuneSummary

__all__ = ["show_tune"]


def show_tune(tune_dir: Path | str, *, html: Path | str | None = None) -> TuneSummary:
    """The fronts (`pareto.json`) and trials of `tune_dir`; with `html`, also the HTML report
    (`nnship.tune.html.write_tune_html`)."""
    tune_dir = Path(tune_dir)
    summary = TuneSummary(tune_dir, read_pareto(tune_dir), read_trials(tune_dir))
    if html is not None:
        from nnship.tune.html import write_tune_html

        summary.html_path = Path(write_tune_html(tune_dir, Path(html)))
    return summary
