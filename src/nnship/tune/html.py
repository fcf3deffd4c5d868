"""`tune.html`: one self-contained page (inline CSS and SVG, no script, no network) rendered from
a tune folder's `pareto.json` and `trials.jsonl`, in the style of the validation report
(`nnship.validate.render.html`, whose CSS, tables and charts it shares).

Sections: the run (study, storage, sampler, constraints, trials per state, machines), one
Pareto-front chart and table per (backend, precision, fingerprint) group (the accuracy metric
of the constraint against latency, marker area proportional to artifact size; the relaxed fronts
when no trial met the constraints), the optimisation history (each trial's best feasible latency
and the running best against the trial number), parameter importances, every trial, notes.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from nnship.core.fileio import write_text_atomic
from nnship.tune.records import (
    ArtifactMetrics,
    FrontPoint,
    ParetoFile,
    ParetoGroup,
    TrialRecord,
    TuneSettings,
    read_pareto,
    read_settings,
    read_trials,
)
from nnship.validate.render.charts import (
    FAIL_COLOR,
    PALETTE,
    Bar,
    Series,
    SeriesPoint,
    bar_chart,
    series_plot,
)

# the validation report's stylesheet and table/figure markup: one look for every nnship page
from nnship.validate.render.page import PAGE_CSS, html_figure, html_table

__all__ = ["QUALITY_METRICS", "parameter_importances", "render_tune_html", "write_tune_html"]

QUALITY_METRICS = {
    # metric: (axis title, lower is better)
    "top1_drop": ("top-1 drop, points", True),
    "top1_agreement": ("top-1 agreement, %", False),
    "top5_agreement": ("top-5 agreement, %", False),
    "cosine": ("output cosine to float", False),
    "sqnr_db": ("output SQNR, dB", False),
}
"""The accuracy metrics a front can be drawn against, in order of preference when no
constraint names one."""

_GREY = "#9a9a9a"
_MIN_R, _MAX_R = 3.5, 13.0


def write_tune_html(tune_dir: Path, path: Path) -> Path:
    """Render the tune folder `tune_dir` (its `pareto.json`, `trials.jsonl` and, when present,
    `tune.json` and the embedded study) and write the page to `path` atomically."""
    return write_text_atomic(path, render_tune_html(tune_dir))


def render_tune_html(tune_dir: Path | str) -> str:
    """The tune report of `tune_dir` as one HTML page (UTF-8 text). Raises `NnshipError` when
    `pareto.json` is missing or corrupt."""
    tune_dir = Path(tune_dir)
    pareto = read_pareto(tune_dir)
    trials = read_trials(tune_dir)
    settings = _settings(tune_dir)
    metric = quality_metric(pareto)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>nnship tune: {escape(settings.study if settings else tune_dir.name)}</title>"
        f"<style>{PAGE_CSS}</style></head><body><main>",
        _header(tune_dir, pareto, trials, settings),
        _fronts(pareto, trials, metric),
        _history(trials),
        _importances(tune_dir, trials, settings),
        _trials_table(trials),
        _notes(pareto, trials),
        '<footer><p class="empty">Rendered from pareto.json (the source of truth) and '
        "trials.jsonl.</p></footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _settings(tune_dir: Path) -> TuneSettings | None:
    try:
        return read_settings(tune_dir)
    except Exception:  # tune.json is optional for the page (a copied folder, an old run)
        return None


def quality_metric(pareto: ParetoFile) -> str:
    """The accuracy metric to draw fronts against: the first constraint's metric
    (`max_top1_drop` -> `top1_drop`), else the first of `QUALITY_METRICS` the fronts carry."""
    for name in pareto.constraints:
        for prefix in ("max_", "min_"):
            metric = name.removeprefix(prefix)
            if name.startswith(prefix) and metric in QUALITY_METRICS:
                return metric
    carried = {
        key
        for group in _all_groups(pareto)
        for point in group.front
        for key, value in point.metrics.items()
        if value is not None
    }
    return next((m for m in QUALITY_METRICS if m in carried), "top1_agreement")


def _all_groups(pareto: ParetoFile) -> list[ParetoGroup]:
    return list(pareto.groups) + (list(pareto.relaxed.groups) if pareto.relaxed else [])


def _header(
    tune_dir: Path, pareto: ParetoFile, trials: list[TrialRecord], settings: TuneSettings | None
) -> str:
    states: dict[str, int] = {}
    for t in trials:
        states[t.state] = states.get(t.state, 0) + 1
    meta: list[tuple[str, str]] = []
    if settings:
        meta += [
            ("study", settings.study),
            ("storage", settings.storage),
            ("sampler", f"{settings.sampler} (seed {settings.seed})"),
        ]
        if settings.recipe_path:
            meta.append(("recipe", settings.recipe_path))
    meta += [
        ("objectives", ", ".join(pareto.objectives) or "-"),
        ("constraints", ", ".join(f"{k} = {v:g}" for k, v in pareto.constraints.items()) or "none"),
        ("trials", ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none yet"),
        ("workers", ", ".join(sorted({t.worker for t in trials if t.worker})) or "-"),
        ("machines", "; ".join(_fingerprint_text(k, f) for k, f in pareto.fingerprints.items())),
        (
            "latency",
            "fronts ranked on one interleaved re-timing pass"
            if pareto.retimed
            else "as measured in each trial (no re-timing pass)",
        ),
        ("folder", str(tune_dir)),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v or '-')}</dd>" for k, v in meta)
    return f'<header><h1>nnship tune report</h1><dl class="meta">{items}</dl></header>'


def _fingerprint_text(key: str, fp: Any) -> str:
    flags = ", ".join(fp.flags) if fp.flags else "no listed ISA flags"
    cores = f", {fp.cores} cores" if fp.cores else ""
    return f"{key}: {fp.cpu or 'unknown CPU'}{cores} ({flags})"


def _metric_value(metrics: dict[str, float | None], metric: str) -> float | None:
    value = metrics.get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def _radius(size: int | None, largest: int) -> float:
    """Marker area proportional to size (radius ~ sqrt(size)), within [_MIN_R, _MAX_R]."""
    if not size or largest <= 0:
        return _MIN_R
    return _MIN_R + (_MAX_R - _MIN_R) * math.sqrt(size / largest)


def _group_artifacts(
    group: ParetoGroup, trials: list[TrialRecord]
) -> list[tuple[TrialRecord, ArtifactMetrics]]:
    return [
        (t, a)
        for t in trials
        for a in t.artifacts
        if a.backend == group.backend
        and a.precision == group.precision
        and (t.fingerprint.id if t.fingerprint else "") == group.fingerprint
    ]


def _front_latency(point: FrontPoint) -> float | None:
    return point.retimed_latency_ms if point.retimed_latency_ms is not None else point.latency_ms


def _fronts(pareto: ParetoFile, trials: list[TrialRecord], metric: str) -> str:
    parts = ['<section id="fronts"><h2>Pareto fronts</h2>']
    if pareto.groups:
        parts += [_front(g, i, trials, metric, pareto) for i, g in enumerate(pareto.groups)]
    elif not pareto.relaxed:
        parts.append('<p class="empty">No finished trial produced a feasible artifact yet.</p>')
    if pareto.relaxed:
        r = pareto.relaxed
        missed = ", ".join(f"{k} by {v:.4g}" for k, v in r.missed_by.items()) or "-"
        parts.append(
            "<h3>No trial met the constraints</h3><p>Closest: trial "
            f"{escape(str(r.closest_trial))}, which missed {escape(missed)}. The fronts below "
            "are ranked without the constraints.</p>"
        )
        parts += [
            _front(g, i, trials, metric, pareto, relaxed=True) for i, g in enumerate(r.groups)
        ]
    return "".join(parts) + "</section>"


def _front(
    group: ParetoGroup,
    index: int,
    trials: list[TrialRecord],
    metric: str,
    pareto: ParetoFile,
    *,
    relaxed: bool = False,
) -> str:
    title, lower_better = QUALITY_METRICS.get(metric, (metric, False))
    others = _group_artifacts(group, trials)
    sizes = [p.size_bytes or 0 for p in group.front] + [a.size_bytes or 0 for _, a in others]
    largest = max(sizes, default=0)
    on_front = {(p.trial, p.path) for p in group.front}
    color = PALETTE[index % len(PALETTE)]
    front_pts, dominated, infeasible = [], [], []
    for p in group.front:
        x, y = _front_latency(p), _metric_value(p.metrics, metric)
        if x is not None and y is not None:
            tip = (
                f"trial {p.trial}: {x:.4g} ms, {title} {y:.4g}, "
                f"{_mb(p.size_bytes)} MB; {_params_text(p.params)}"
            )
            front_pts.append(SeriesPoint(x, y, _radius(p.size_bytes, largest), tip))
    for t, a in others:
        x, y = a.latency_ms_p50, _metric_value(a.metrics, metric)
        if x is None or y is None or (t.number, a.path) in on_front:
            continue
        tip = f"trial {t.number}: {x:.4g} ms, {title} {y:.4g}, {_mb(a.size_bytes)} MB"
        point = SeriesPoint(x, y, _radius(a.size_bytes, largest), tip, hollow=not a.feasible)
        (dominated if a.feasible or relaxed else infeasible).append(point)
    label = f"{group.backend}/{group.precision}"
    series = [
        Series("dominated (in-trial latency)", _GREY, dominated, faint=True),
        Series("infeasible (in-trial latency)", FAIL_COLOR, infeasible, faint=True),
        # no line: the front is non-dominated in the objectives (latency, size), not in
        # accuracy, so joining its points here would draw a trade-off that is not one
        Series(f"front: {label}", color, front_pts),
    ]
    kind = "relaxed front" if relaxed else "front"
    head = f"<h3>{escape(label)} <code>{escape(group.fingerprint)}</code> ({kind})</h3>"
    if not front_pts and not dominated and not infeasible:
        chart = f'<p class="empty">No point of this group has latency and {escape(metric)}.</p>'
    else:
        svg = series_plot(
            series,
            title=f"Pareto front of {label}",
            x_title="p50 latency (ms)"
            + (", front re-timed in one interleaved pass" if pareto.retimed else ""),
            y_title=f"{title} ({'lower' if lower_better else 'higher'} = better)",
        )
        caption = (
            f"{'Down' if lower_better else 'Up'} and to the left is better; the marker's area "
            "is proportional to the artifact's size. Grey: feasible but dominated, red rings: "
            "infeasible, both at the latency measured in their own trial. Hover for values."
        )
        chart = html_figure(svg, caption)
    return f'<div class="front">{head}{chart}{_front_table(group, metric)}</div>'


def _front_table(group: ParetoGroup, metric: str) -> str:
    metrics = sorted({k for p in group.front for k, v in p.metrics.items() if v is not None})
    if metric in metrics:
        metrics.remove(metric)
        metrics.insert(0, metric)
    header = ["trial", "p50 ms (trial)", "p50 ms (re-timed)", "size MB", *metrics, "settings"]
    rows = [
        [
            str(p.trial),
            _num(p.latency_ms),
            _num(p.retimed_latency_ms),
            _mb(p.size_bytes),
            *[_num(p.metrics.get(m)) for m in metrics],
            _params_text(p.params),
        ]
        for p in group.front
    ]
    return html_table(header, rows, text_cols=(len(header) - 1,))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _mb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.3g}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) or "-"


def _history(trials: list[TrialRecord]) -> str:
    head = '<section id="history"><h2>Optimisation history</h2>'
    feasible, infeasible, best = [], [], []
    running: float | None = None
    for t in trials:
        latency = t.objectives.get("latency_ms")
        if t.feasible and latency is not None:
            feasible.append(SeriesPoint(t.number, float(latency), 4.5, f"trial {t.number}: "
                                        f"{latency:.4g} ms ({_params_text(t.params)})"))  # fmt: skip
            if running is None or latency < running:
                running = float(latency)
                best.append(SeriesPoint(t.number, running, 3.0, f"best after {t.number}"))
        else:
            fastest = min((a.latency_ms_p50 for a in t.artifacts if a.latency_ms_p50), default=None)
            if fastest is not None:
                tip = f"trial {t.number} ({t.state}): fastest artifact {fastest:.4g} ms"
                infeasible.append(SeriesPoint(t.number, fastest, 4.5, tip, hollow=True))
    if not feasible and not infeasible:
        return head + '<p class="empty">No finished trial has a latency yet.</p></section>'
    if trials and best and best[-1].x != trials[-1].number:  # hold the best to the last trial
        best.append(SeriesPoint(trials[-1].number, best[-1].y, 0.0, best[-1].tip))
    svg = series_plot(
        [
            Series("feasible trial", PALETTE[0], feasible),
            Series("infeasible / pruned (fastest artifact)", FAIL_COLOR, infeasible, faint=True),
            Series("best feasible so far", "#111111", best, line="step"),
        ],
        title="optimisation history",
        x_title="trial number",
        y_title="trial's best feasible p50 (ms)",
    )
    caption = (
        "Each trial's fastest feasible artifact (latency as measured in the trial, across "
        "backends) and the running best; red rings: trials with no feasible artifact."
    )
    return head + html_figure(svg, caption) + "</section>"


def parameter_importances(
    tune_dir: Path | str, trials: list[TrialRecord] | None = None
) -> tuple[dict[str, float], str]:
    """fANOVA importances (`optuna.importance.get_param_importances`, seed 0) of the searched
    parameters for the best feasible latency, over the feasible trials, and where they come
    from. The parameters' distributions are the study's when the embedded study (`study.db`)
    is in `tune_dir`, else inferred from the values in `trials.jsonl`. Empty when fewer than
    two feasible trials differ."""
    import optuna

    tune_dir = Path(tune_dir)
    trials = read_trials(tune_dir) if trials is None else trials
    values = {
        t.number: float(t.objectives["latency_ms"])  # type: ignore[arg-type]
        for t in trials
        if t.feasible and t.objectives.get("latency_ms") is not None
    }
    frozen, source = _study_trials(tune_dir, values)
    if frozen is None:
        frozen = _inferred_trials(trials, values)
        source = "trials.jsonl (distributions inferred from the values tried)"
    if len(frozen) < 2:
        return {}, source
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    study.add_trials(frozen)
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
        return {k: float(v) for k, v in found.items()}, source
    except (ValueError, RuntimeError):  # no parameter common to all trials, a single value
        return {}, source


def _study_trials(tune_dir: Path, values: dict[int, float]) -> tuple[list | None, str]:
    """The study's own finished trials (with their distributions), valued by `values`, when
    the embedded study file is here; (None, "") otherwise (a server study is not opened)."""
    import optuna

    from nnship.tune.storage import DEFAULT_DB_NAME

    settings = _settings(tune_dir)
    db = tune_dir / DEFAULT_DB_NAME
    if settings is None or not db.is_file():
        return None, ""
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{db.absolute().as_posix()}")
        study = optuna.load_study(study_name=settings.study, storage=storage)
    except Exception:  # not loadable (other optuna version, other name): infer instead
        return None, ""
    frozen = [
        optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, value=values[t.number]
        )
        for t in study.get_trials(deepcopy=False)
        if t.number in values and t.params
    ]
    return frozen, f"the study's trials and distributions ({DEFAULT_DB_NAME})"


def _inferred_trials(trials: list[TrialRecord], values: dict[int, float]) -> list:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    chosen = [t for t in trials if t.number in values and t.params]
    seen: dict[str, list[Any]] = {}
    for t in chosen:
        for key, value in t.params.items():
            seen.setdefault(key, []).append(_choice(value))
    distributions: dict[str, Any] = {}
    for key, vals in seen.items():
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
        distinct = sorted(set(vals), key=repr)
        if numeric and len(distinct) > 2 and all(isinstance(v, int) for v in vals):
            distributions[key] = IntDistribution(min(vals), max(vals))
        elif numeric and len(distinct) > 2:
            distributions[key] = FloatDistribution(min(vals), max(vals))
        else:
            distributions[key] = CategoricalDistribution(distinct)
    return [
        optuna.trial.create_trial(
            params={k: _choice(v) for k, v in t.params.items()},
            distributions={k: distributions[k] for k in t.params},
            value=values[t.number],
        )
        for t in chosen
    ]


def _choice(value: Any) -> Any:
    """A categorical choice Optuna accepts (None, bool, int, float, str): lists become JSON."""
    return (
        value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value)
    )


def _importances(tune_dir: Path, trials: list[TrialRecord], settings: TuneSettings | None) -> str:
    head = '<section id="importances"><h2>Parameter importances</h2>'
    importances, source = parameter_importances(tune_dir, trials)
    if not importances:
        return (
            head + '<p class="empty">Needs at least two feasible trials with different '
            "settings.</p></section>"
        )
    bars = [
        Bar(label=k, value=100.0 * v, tip=f"{k}: {100.0 * v:.1f}% of the variance")
        for k, v in importances.items()
    ]
    svg = bar_chart(
        bars,
        title="parameter importances",
        x_title="share of the best feasible latency's variance explained (%)",
        marker_title="",
    )
    caption = (
        f"fANOVA importances for the trial's best feasible latency over {len(trials)} finished "
        f"trials' feasible ones; distributions from {source}. Parameters that are not set in "
        "every trial (conditional ones) are left out by fANOVA."
    )
    return head + html_figure(svg, caption) + "</section>"


def _trials_table(trials: list[TrialRecord]) -> str:
    if not trials:
        return ""
    header = ["trial", "state", "p50 ms", "size MB", "reused stages", "worker", "s", "settings"]
    rows, classes = [], []
    for t in trials:
        reused = sum(1 for v in t.stages.values() if v == "reused")
        rows.append(
            [
                str(t.number),
                t.state + (f" ({t.reason})" if t.reason else ""),
                _num(t.objectives.get("latency_ms")),
                _mb(t.objectives.get("size_bytes")),  # type: ignore[arg-type]
                f"{reused}/{len(t.stages)}",
                t.worker or "-",
                _num(t.duration_s),
                _params_text(t.params),
            ]
        )
        cls = "pass" if t.feasible else "fail" if t.state in ("infeasible", "failed") else ""
        classes.append(["", cls, "", "", "", "", "", ""])
    table = html_table(header, rows, classes, text_cols=(1, 5, 7))
    return f'<section id="trials"><h2>Trials</h2>{table}</section>'


def _notes(pareto: ParetoFile, trials: list[TrialRecord]) -> str:
    notes = []
    ids = set(pareto.fingerprints) | {t.fingerprint.id for t in trials if t.fingerprint}
    if len(ids) > 1:
        notes.append(
            f"Trials ran on {len(ids)} different machines (fingerprints "
            f"{', '.join(sorted(ids))}): their latencies are not comparable, so each machine "
            "has its own fronts; compare fronts of one fingerprint only."
        )
    if not pareto.retimed and pareto.groups:
        notes.append(
            "The fronts were not re-timed side by side: latencies from different trials may "
            "drift by tens of percent on a busy machine."
        )
    if not notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'
