"""Rich tables on the terminal: the report summary and a latency table (for `nnship bench`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nnship.validate.render.cells import fmt, latency_cells, summary_columns, summary_table
from nnship.validate.report import LatencyStats, Report

# Piped output (CI logs) has no width; rich would squeeze the tables to 80 columns.
_PIPE_WIDTH = 160


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=_PIPE_WIDTH)


def print_report(report: Report, console: Console | None = None) -> None:
    """Print the summary table (one row per artifact) and failed gates to stdout."""
    console = console or _console()
    table = Table(title=f"nnship validate: {report.data.description}", title_justify="left")
    for i, col in enumerate(summary_columns(report)):
        left = i == 0 or col == "gates"
        table.add_column(col, justify="left" if left else "right", no_wrap=i == 0)
    for cells in summary_table(report):
        gate = cells[-1]
        style = "red" if gate.startswith("FAIL") else "green" if gate == "pass" else ""
        table.add_row(*cells[:-1], f"[{style}]{gate}[/]" if style else gate)
    console.print(table)
    console.print(f"CPU: {report.environment.cpu_model}: {report.environment.capabilities()}")
    for verdict in report.failed_gates:
        value = fmt(verdict.value, 4, none="n/a")
        console.print(
            f"[red]gate failed[/]: {verdict.row}: {verdict.gate} = {value} "
            f"(threshold {verdict.threshold:g}; {verdict.detail})"
        )
    if report.gates and report.passed:
        console.print(f"[green]all {len(report.gates)} gate checks passed[/]")


def print_latency(
    rows: dict[str, list[LatencyStats]], console: Console | None = None, *, title: str = ""
) -> None:
    """A latency table: one line per (runner, batch size), milliseconds and samples/second."""
    console = console or _console()
    table = Table(title=title or "latency (ms)", title_justify="left")
    for col in ("runner", "batch", "p50", "p90", "p99", "mean", "CV", "samples/s", "first run"):
        table.add_column(col, justify="left" if col == "runner" else "right")
    for label, stats_list in rows.items():
        for s in stats_list:
            table.add_row(
                label,
                *latency_cells(s),
                fmt(s.throughput_per_s, 1)
                + (
                    f" (async {s.async_throughput_per_s:.1f})"
                    if s.async_throughput_per_s is not None
                    else ""
                ),
                fmt(s.first_run_ms, 2),
            )
    console.print(table)
