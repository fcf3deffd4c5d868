"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network) rendered
from a `Report`. The JSON stays the source of truth; this is a view of it, like the Markdown.

Sections: verdict and provenance, the summary table, gate verdicts, latency distributions per
artifact (box plots over the raw samples), accuracy (the primary task metric when there is one)
against latency across artifacts (scatter),
per-layer drift bars (when `nnship explain` attached `layer_drift`), output drift, notes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from html import escape
from pathlib import Path

from nnship.core.fileio import write_text_atomic
from nnship.validate.render.cells import (
    DRIFT_COLUMNS,
    drift_table,
    fmt,
    gate_cells,
    summary_columns,
    summary_table,
    task_examples,
    task_metric_text,
)
from nnship.validate.render.charts import (
    Bar,
    BoxSeries,
    Point,
    bar_chart,
    box_plot,
    color,
    scatter,
)
from nnship.validate.render.markdown import report_markdown
from nnship.validate.render.page import PAGE_CSS, html_figure, html_table
from nnship.validate.report import LayerDrift, Report, Row, outlier_layers

MAX_LAYERS_PLOTTED = 20
"""Worst layers drawn per artifact in the per-layer drift chart."""


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (UTF-8 text)."""
    status = "PASSED" if report.passed else "FAILED"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>nnship report: {status}</title><style>{PAGE_CSS}</style></head><body><main>",
        _header(report, status),
        _summary(report),
        _gates(report),
        _latency(report),
        _tradeoff(report),
        _layers(report),
        _output_drift(report),
        _notes(report),
        f'<footer><p class="empty">Rendered from the report JSON (schema version '
        f"{report.schema_version}, nnship {escape(report.nnship_version)}); the JSON is the "
        "source of truth.</p></footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_html(report: Report, path: Path | str) -> Path:
    """Render `report` and write it to `path` atomically."""
    return write_text_atomic(path, render_html(report))


def render_report_files(
    report_path: Path | str,
    *,
    html: Path | str | None = None,
    markdown: Path | str | None = None,
) -> Report:
    """`nnship report`: load a saved report (`ReportError` if corrupt) and write its HTML and/or
    Markdown renderings atomically. Returns the loaded report."""
    report = Report.load(report_path)
    if html is not None:
        write_html(report, html)
    if markdown is not None:
        write_text_atomic(markdown, report_markdown(report))
    return report


def _rows(report: Report) -> list[Row]:
    return [report.baseline, *report.rows]


def _failed_rows(report: Report) -> set[str]:
    return {v.row for v in report.gates if not v.passed}


def _header(report: Report, status: str) -> str:
    cls = "pass" if report.passed else "fail"
    model = report.model.source or "?"
    if report.model.fingerprint:
        model += f" (sha256 {report.model.fingerprint[:12]})"
    data = report.data.description or "?"
    if "samples" not in data:
        data += f", {report.data.num_samples} samples"
    data += ", labelled" if report.data.has_labels else ", no labels"
    meta = [
        ("model", model),
        ("data", data),
        ("task", report.task),
        *([("task metric", metric)] if (metric := task_metric_text(report)) else []),
        ("environment", report.environment.summary()),
        ("CPU capabilities", report.environment.capabilities()),
        ("created", f"{report.created} (nnship {report.nnship_version})"),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in meta)
    return (
        f'<header><h1>nnship validation report <span class="verdict {cls}">{status}</span>'
        f'</h1><dl class="meta">{items}</dl></header>'
    )


def _verdict_class(cell: str) -> str:
    return "pass" if cell == "pass" else "fail" if cell.startswith("FAIL") else ""


def _summary(report: Report) -> str:
    cells = summary_table(report)
    columns = summary_columns(report)
    classes = [[""] * (len(columns) - 1) + [_verdict_class(row[-1])] for row in cells]
    return (
        '<section id="summary"><h2>Summary</h2>'
        + html_table(columns, cells, classes)
        + "</section>"
    )


def _gates(report: Report) -> str:
    if not report.gates:
        return '<section id="gates"><h2>Gates</h2><p class="empty">No gates were set.</p></section>'
    rows, classes = [], []
    for v in report.gates:
        rows.append(["PASS" if v.passed else "FAIL", *gate_cells(v)])
        classes.append(["pass" if v.passed else "fail", "", "", "", "", ""])
    header = ("verdict", "artifact", "gate", "threshold", "value", "detail")
    table = html_table(header, rows, classes, text_cols=(0, 1, 2, 5))
    return f'<section id="gates"><h2>Gates</h2>{table}</section>'


def _latency(report: Report) -> str:
    series = []
    for i, row in enumerate(_rows(report)):
        for stats in row.latency:
            label = (
                row.label if len(row.latency) == 1 else f"{row.label} (batch {stats.batch_size})"
            )
            summary = {
                "min": stats.min_ms,
                "p50": stats.p50_ms,
                "p90": stats.p90_ms,
                "p99": stats.p99_ms,
            }
            series.append(BoxSeries(label, color(i), stats.samples_ms, summary))
    head = '<section id="latency"><h2>Latency distribution</h2>'
    if not series:
        return head + '<p class="empty">Latency was not measured.</p></section>'
    svg = box_plot(series, title="latency per run", unit="ms")
    caption = (
        "Each dot is one timed run; the box spans the 25th-75th percentile, the dark line is "
        "the median, the whiskers the 1st-99th percentile. Hover for values."
    )
    return head + html_figure(svg, caption) + "</section>"


def _quality(report: Report) -> tuple[str, dict[str, float]]:
    """The y axis of the trade-off plot: the primary task metric, else accuracy, else top-1
    agreement, else worst SQNR."""
    rows = _rows(report)
    primary = report.primary_task_metric()
    task = {r.label: r.task_metrics[primary] for r in rows if primary in r.task_metrics}
    if primary is not None and any(r.label in task for r in report.rows):
        return f"{primary} (task metric)", task
    acc = {
        r.label: r.classification.accuracy
        for r in rows
        if r.classification and r.classification.accuracy is not None
    }
    if acc:
        return "accuracy (%)", acc
    agree = {
        r.label: r.classification.top1_agreement
        for r in report.rows
        if r.classification and r.classification.top1_agreement is not None
    }
    if agree:
        return "top-1 agreement with the baseline (%)", {report.baseline.label: 100.0, **agree}
    sqnr = {}
    for r in report.rows:
        value, _ = r.worst("sqnr_db")
        if value is not None and math.isfinite(value):
            sqnr[r.label] = value
    return "worst output SQNR (dB)", sqnr


def _tradeoff(report: Report) -> str:
    head = '<section id="tradeoff"><h2>Accuracy vs latency</h2>'
    y_title, quality = _quality(report)
    base = report.baseline.latency_at()
    failed = _failed_rows(report)
    points = []
    for i, row in enumerate(_rows(report)):
        lat = row.latency_at(base.batch_size if base else None)
        if lat is not None and row.label in quality:
            points.append(
                Point(row.label, lat.p50_ms, quality[row.label], color(i), row.label in failed)
            )
    if not points:
        return (
            head
            + '<p class="empty">Needs latency and accuracy for at least one artifact.</p></section>'
        )
    batch = f" at batch {base.batch_size}" if base else ""
    svg = scatter(
        points, title="accuracy vs latency", x_title=f"p50 latency (ms){batch}", y_title=y_title
    )
    caption = "Up and to the left is better. A red ring marks an artifact that failed a gate."
    return head + html_figure(svg, caption) + "</section>"


def _layers(report: Report) -> str:
    if not report.layer_drift:
        return ""
    by_artifact: dict[str, list[LayerDrift]] = defaultdict(list)
    for layer in report.layer_drift:
        by_artifact[layer.artifact].append(layer)
    parts = ['<section id="layers"><h2>Per-layer drift</h2>']
    for artifact, layers in by_artifact.items():
        worst = outlier_layers(layers)
        shown = layers[:MAX_LAYERS_PLOTTED]
        bars = [
            Bar(
                label=_layer_label(d),
                value=d.local_sqnr_db,
                marker=d.sqnr_db,
                highlight=d.layer in worst,
                tip=(
                    f"{d.layer} ({d.op_type or '?'}"
                    + (f", torch {d.torch_module}" if d.torch_module else "")
                    + f"): adds noise at {fmt(d.local_sqnr_db, 1, none='inf')} dB SQNR; output "
                    f"SQNR {fmt(d.sqnr_db, 1, none='inf')} dB; cosine {fmt(d.cosine, 5)}"
                ),
            )
            for d in shown
        ]
        svg = bar_chart(
            bars,
            title=f"per-layer drift of {artifact}",
            x_title="SQNR of the noise the layer adds (dB; shorter = worse)",
            marker_title="SQNR of the layer's output in the whole artifact (dB)",
        )
        more = f" (worst {len(shown)} of {len(layers)})" if len(layers) > len(shown) else ""
        caption = (
            "Bars: the noise each layer adds, measured by running it alone on the float "
            "model's activations. Red: more than 10 dB below the median layer, candidates for "
            "nnship quantize --exclude. Hover for node names."
        )
        parts.append(f"<h3>{escape(artifact)}{escape(more)}</h3>" + html_figure(svg, caption))
        if worst:
            names = [d.onnx_node for d in layers if d.layer in worst and d.onnx_node]
            if names:
                args = " ".join(f"--exclude {n}" for n in names)
                parts.append(f"<p>Suggested: <code>nnship quantize ... {escape(args)}</code></p>")
    return "".join(parts) + "</section>"


def _layer_label(d: LayerDrift) -> str:
    return f"{d.torch_module} ({d.op_type})" if d.torch_module else d.layer


def _output_drift(report: Report) -> str:
    rows = drift_table(report)
    if not rows:
        return ""
    table = html_table(DRIFT_COLUMNS, rows, text_cols=(0, 1))
    return f'<section id="drift"><h2>Output drift</h2>{table}</section>'


def _notes(report: Report) -> str:
    notes = (
        list(report.notes)
        + [f"task metric, decoded differently: {e}" for e in task_examples(report)]
        + [f"{row.label}: {note}" for row in _rows(report) for note in row.notes]
    )
    if not notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'
