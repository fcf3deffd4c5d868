"""The report as Markdown (`report.md`), built from the shared cells, and the one function that
writes a report's JSON with its Markdown beside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnship.core.fileio import write_text_atomic
from nnship.validate.render.cells import (
    DRIFT_COLUMNS,
    drift_table,
    fmt,
    gate_cells,
    latency_cells,
    summary_columns,
    summary_table,
    task_examples,
    task_metric_text,
)

if TYPE_CHECKING:
    from nnship.validate.report import Report


def _table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return lines


def report_markdown(report: Report) -> str:
    """The whole report as Markdown: verdict, summary table, gates, outputs, latency, notes."""
    status = "PASSED" if report.passed else "FAILED"
    lines = [
        f"# nnship validation report: {status}",
        "",
        f"- model: `{report.model.source or '?'}`"
        + (f" (sha256 {report.model.fingerprint[:12]})" if report.model.fingerprint else ""),
        f"- data: {report.data.description}"
        + ("" if "samples" in report.data.description else f", {report.data.num_samples} samples")
        + (", labelled" if report.data.has_labels else ", no labels"),
        f"- task: {report.task}",
        *([f"- task metric: {metric}"] if (metric := task_metric_text(report)) else []),
        f"- environment: {report.environment.summary()}",
        f"- CPU capabilities: {report.environment.capabilities()}",
        f"- nnship {report.nnship_version}, created {report.created}",
        "",
        "## Summary",
        "",
        *_table(summary_columns(report), summary_table(report)),
    ]
    if report.gates:
        lines += ["", "## Gates", ""]
        gate_rows = [["pass" if v.passed else "**FAIL**", *gate_cells(v)] for v in report.gates]
        lines += _table(("", "artifact", "gate", "threshold", "value", "detail"), gate_rows)
    drift_rows = drift_table(report)
    if drift_rows:
        lines += ["", "## Output drift", ""]
        lines += _table(DRIFT_COLUMNS, drift_rows)
    examples = task_examples(report)
    if examples:
        lines += ["", "## Task metric: decodes that differ", ""] + [f"- {e}" for e in examples]
    lat_rows = [
        [
            row.label,
            *latency_cells(s),
            fmt(s.throughput_per_s, 1),
            fmt(s.first_run_ms, 2),
            fmt(row.cold_start_ms, 1),
            fmt(row.run_memory.peak_delta_mb if row.run_memory else None, 1),
        ]
        for row in [report.baseline, *report.rows]
        for s in row.latency
    ]
    if lat_rows:
        lines += ["", "## Latency (ms)", ""]
        lines += _table(
            (
                "artifact",
                "batch",
                "p50",
                "p90",
                "p99",
                "mean",
                "CV",
                "samples/s",
                "first run",
                "load",
                "peak RSS +MB",
            ),
            lat_rows,
        )
    notes = list(report.notes) + [
        f"{row.label}: {note}" for row in [report.baseline, *report.rows] for note in row.notes
    ]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def save_with_markdown(report: Report, path: Path | str) -> Path:
    """Write the report's JSON to `path` (`Report.save`) and its Markdown beside it (same stem,
    `.md`), each atomically; returns the JSON's path."""
    path = report.save(path)
    write_text_atomic(Path(path).with_suffix(".md"), report_markdown(report))
    return path
