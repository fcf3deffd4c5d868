"""The Markdown, HTML and terminal views format output drift and latency from one helper each."""

from __future__ import annotations

import numpy as np
from _validate_helpers import classification_data, linear_classifier
from rich.console import Console

from nnship.validate import LatencyConfig, ValidateConfig, validate
from nnship.validate.render.cells import DRIFT_COLUMNS, drift_table, latency_cells
from nnship.validate.render.html import render_html
from nnship.validate.render.markdown import report_markdown
from nnship.validate.render.terminal import print_latency


def test_drift_and_latency_cells_are_the_same_in_every_view() -> None:
    _, _, make = linear_classifier()
    data = classification_data(labels=np.arange(40) % 4)
    config = ValidateConfig(
        latency=LatencyConfig(runs=5, max_warmup_runs=2, min_warmup_runs=1, stable_window=2)
    )
    report = validate(make(), {"noisy": make(noise=0.3)}, data, config=config)
    rows = drift_table(report)
    assert len(rows) == 1 and len(rows[0]) == len(DRIFT_COLUMNS)
    out = report.row("noisy").outputs[0]
    assert rows[0][:3] == ["noisy", out.name, f"{out.max_abs_error:.3g}"]
    assert rows[0][4] == f"{out.cosine_mean:.6f}"
    md, html = report_markdown(report), render_html(report)
    assert "| " + " | ".join(rows[0]) + " |" in md
    assert all(cell in html for cell in rows[0])

    stats = report.row("noisy").latency[0]
    cells = latency_cells(stats)
    assert cells == [
        str(stats.batch_size),
        *(f"{v:.3f}" for v in (stats.p50_ms, stats.p90_ms, stats.p99_ms, stats.mean_ms, stats.cv)),
    ]
    assert "| noisy | " + " | ".join(cells) + " |" in md
    console = Console(record=True, width=200)
    print_latency({"noisy": [stats]}, console=console)
    text = console.export_text()  # (clears the recording)
    assert all(cell in text for cell in cells)
