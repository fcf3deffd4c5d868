"""Table cells of a `Report` shared by every view (terminal, Markdown, HTML): never a source of
truth, the JSON is.

`summary_columns` / `summary_table` give the summary (one column per task metric value, the
primary first, after the speedup); `drift_table` and `latency_cells` the detail tables.
"""

from __future__ import annotations

from nnship.validate.report import TASK_EXAMPLES, GateVerdict, LatencyStats, Report, Row

COLUMNS = (
    "artifact",
    "size MB",
    "p50 ms",
    "speedup",
    "top-1 agree %",
    "accuracy %",
    "cosine",
    "SQNR dB",
    "gates",
)


TASK_AFTER = COLUMNS.index("speedup") + 1
"""Task metric columns go right after the speedup: the number users ship on comes first."""


def summary_columns(report: Report) -> tuple[str, ...]:
    """`COLUMNS` with one column per task metric value (`Report.task_metric_names`)."""
    return (*COLUMNS[:TASK_AFTER], *report.task_metric_names(), *COLUMNS[TASK_AFTER:])


def fmt_task(name: str, value: float | None) -> str:
    """A task metric value: decibels to 2 decimals, fractions and rates to 4."""
    return fmt(value, 2 if name.endswith("_db") else 4)


def task_metric_text(report: Report) -> str | None:
    """The task metric in one line: its family and the settings it was given a value for
    ("detection: output=output0, score_threshold=0.25, ..."); None without one."""
    config = report.task_metric
    if config is None:
        return None
    settings = [f"{k}={v}" for k, v in config.items() if k != "kind" and v is not None]
    primary = report.primary_task_metric()
    text = f"{config.get('kind', '?')}" + (f": {', '.join(settings)}" if settings else "")
    return text + (f" (primary value: {primary})" if primary else "")


def task_examples(report: Report) -> list[str]:
    """'label: baseline "x" vs candidate "y"' for the decodes that differ (sequence metrics)."""
    return [
        f'{row.label}: baseline "{e.get("baseline")}" vs candidate "{e.get("candidate")}"'
        for row in report.rows
        for e in row.extra.get(TASK_EXAMPLES) or []
        if isinstance(e, dict)
    ]


def fmt(value: float | None, digits: int = 2, *, none: str = "-") -> str:
    if value is None:
        return none
    return f"{value:.{digits}f}"


def fmt_value(value: object, digits: int = 3, *, none: str = "-") -> str:
    """A table cell of mixed values: floats to `digits` decimals, None as `none`, anything
    else (byte counts, trial numbers, text) as it is."""
    if value is None:
        return none
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_g(value: float | None, *, none: str = "-") -> str:
    """Three significant digits (errors span many decades: 3.1e-07, 0.0042, 1.5)."""
    return none if value is None else f"{value:.3g}"


DRIFT_COLUMNS = (
    "artifact",
    "output",
    "max abs",
    "mean abs",
    "cosine mean",
    "cosine min",
    "SQNR dB",
)


def drift_table(report: Report) -> list[list[str]]:
    """One list of cells (see `DRIFT_COLUMNS`) per (candidate row, output)."""
    return [
        [
            row.label,
            o.name,
            fmt_g(o.max_abs_error),
            fmt_g(o.mean_abs_error),
            fmt(o.cosine_mean, 6),
            fmt(o.cosine_min, 6),
            "inf" if o.exact_match else fmt(o.sqnr_db, 1),
        ]
        for row in report.rows
        for o in row.outputs
    ]


def latency_cells(s: LatencyStats) -> list[str]:
    """Cells "batch", "p50", "p90", "p99", "mean", "CV" (milliseconds, 3 decimals)."""
    return [
        str(s.batch_size),
        fmt(s.p50_ms, 3),
        fmt(s.p90_ms, 3),
        fmt(s.p99_ms, 3),
        fmt(s.mean_ms, 3),
        fmt(s.cv, 3),
    ]


def gate_cells(v: GateVerdict) -> list[str]:
    """Cells "artifact", "gate", "threshold", "value", "detail" of one gate verdict."""
    return [v.row, v.gate, f"{v.threshold:g}", fmt(v.value, 4), v.detail]


def _worst_sqnr(row: Row) -> str:
    if not row.outputs:
        return "-"
    if any(o.nonfinite_count for o in row.outputs):
        return "NaN"
    value, _ = row.worst("sqnr_db")
    return "inf" if value is None else fmt(value, 1)


def _gate_cell(report: Report, row: Row) -> str:
    verdicts = [v for v in report.gates if v.row == row.label]
    if row is report.baseline or not verdicts:
        return "-"
    failed = [v.gate for v in verdicts if not v.passed]
    return "FAIL: " + ", ".join(failed) if failed else "pass"


def summary_table(report: Report) -> list[list[str]]:
    """One list of cells (see `summary_columns`) per row, baseline first."""
    base_lat = report.baseline.latency_at()
    task_names = report.task_metric_names()
    cells = []
    for row in [report.baseline, *report.rows]:
        lat = row.latency_at(base_lat.batch_size if base_lat else None)
        speedup = "-"
        if lat and base_lat and lat.p50_ms > 0:
            speedup = f"{base_lat.p50_ms / lat.p50_ms:.2f}x"
        cls = row.classification
        acc = "-"
        if cls is not None and cls.accuracy is not None:
            acc = fmt(cls.accuracy)
            if row is not report.baseline and cls.top1_drop is not None:
                acc += f" ({0.0 - cls.top1_drop:+.2f})".replace("-0.00", "+0.00")
        cosine, _ = row.worst("cosine_mean")
        cells.append(
            [
                row.label,
                fmt(row.size_bytes / 1e6 if row.size_bytes is not None else None, 3),
                fmt(lat.p50_ms, 3) if lat else "-",
                speedup,
                *(fmt_task(name, row.task_metrics.get(name)) for name in task_names),
                fmt(cls.top1_agreement) if cls and cls.top1_agreement is not None else "-",
                acc,
                "NaN" if any(o.nonfinite_count for o in row.outputs) else fmt(cosine, 5),
                _worst_sqnr(row),
                _gate_cell(report, row),
            ]
        )
    return cells
