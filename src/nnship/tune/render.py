"""`nnship tune show` on the terminal: one rich table per (backend, precision, machine)."""

from __future__ import annotations

from nnship.tune.records import ParetoFile, ParetoGroup, TrialRecord
from nnship.validate.render.cells import fmt_value

__all__ = ["print_fronts"]


def _table(group: ParetoGroup, title: str) -> object:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("trial", "right"),
        ("p50 ms", "right"),
        ("re-timed ms", "right"),
        ("size bytes", "right"),
        ("top-1 drop", "right"),
        ("top-1 agree %", "right"),
        ("cosine", "right"),
        ("params", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in group.front:
        params = ", ".join(f"{k}={v}" for k, v in p.params.items())
        table.add_row(
            str(p.trial),
            fmt_value(p.latency_ms),
            fmt_value(p.retimed_latency_ms),
            fmt_value(p.size_bytes),
            fmt_value(p.metrics.get("top1_drop"), 2),
            fmt_value(p.metrics.get("top1_agreement"), 2),
            fmt_value(p.metrics.get("cosine"), 5),
            params,
        )
    return table


def print_fronts(pareto: ParetoFile, records: list[TrialRecord]) -> None:
    """Print the fronts (stdout), say when machines differ or nothing was feasible."""
    from rich.console import Console

    console = Console()
    states: dict[str, int] = {}
    for r in records:
        states[r.state] = states.get(r.state, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"
    budget = ", ".join(f"{k} = {v:g}" for k, v in pareto.constraints.items()) or "none"
    console.print(f"trials: {counts}; constraints: {budget}", highlight=False)
    if len(pareto.fingerprints) > 1:
        console.print(
            f"[yellow]Trials ran on {len(pareto.fingerprints)} different machines: their "
            "latencies are grouped per machine, never ranked together.[/yellow]"
        )
    groups = pareto.groups
    if not groups and pareto.relaxed is not None:
        r = pareto.relaxed
        missed = ", ".join(f"{k} by {v:g}" for k, v in r.missed_by.items())
        console.print(
            f"[red]No trial met the constraints.[/red] Closest: trial {r.closest_trial} "
            f"(misses {missed}). Fronts under the relaxed budget:"
        )
        groups = r.groups
    for group in groups:
        title = f"{group.backend}/{group.precision}"
        if len(pareto.fingerprints) > 1:
            title += f" (machine {group.fingerprint})"
        console.print(_table(group, title))
    if not groups:
        console.print("No finished trial with artifacts yet.")
