"""Regression gating of a new report against a stored one (`nnship compare`).

Rows are matched by label. For each candidate row present in both reports the comparison
computes the regression of: top-1 (accuracy when both have labels, else agreement with the
baseline; percentage points), worst per-sample cosine, worst SQNR (dB), p50 latency at the first
common batch size (ms) and size on disk (MB). A threshold is absolute in the metric's unit
("0.3") or relative to the stored value ("10%"). Metrics without a threshold are reported, not
gated. Every task metric value (`Row.task_metrics`) is compared too: its regression is the
change in the worse direction (a drop of `det_f1`, a rise of `cer`), gated per name by
`max_task_drop` ({name: threshold}).

Refusals (`ReportError`, exit 2): different model or data fingerprints (unless
`allow_mismatch`), different task metric configurations (unless `allow_metric_mismatch`), a
task threshold on a value neither report has, and a latency threshold across different hardware
(unless `allow_hardware_mismatch`, which compares and flags it).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nnship.core.environment import hardware_differences
from nnship.core.errors import ReportError
from nnship.metrics.task.config import higher_is_better, parse_metric
from nnship.validate.report import Report, Row


class Threshold(BaseModel):
    """A non-negative limit, absolute (metric units) or relative (fraction of the old value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0)
    relative: bool = False

    @classmethod
    def parse(cls, text: str | float, *, name: str = "threshold") -> Threshold:
        """ "10%" -> relative 0.10; "0.3" -> absolute 0.3. `ReportError` names `name` if bad."""
        raw = str(text).strip()
        relative = raw.endswith("%")
        try:
            value = float(raw[:-1] if relative else raw)
        except ValueError as exc:
            raise ReportError(
                f"{name}: '{text}' is not a number or a percentage (e.g. 0.5 or 10%)"
            ) from exc
        if not math.isfinite(value) or value < 0:
            raise ReportError(f"{name}: '{text}' must be a non-negative number")
        return cls(value=value / 100.0 if relative else value, relative=relative)

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


class CompareThresholds(BaseModel):
    """Allowed regressions. Units: top-1 in percentage points, cosine as a number, SQNR in dB,
    latency in milliseconds, size in megabytes, a task metric value in its own unit (by name:
    `max_task_drop={"det_f1": Threshold.parse("0.01")}`); or relative with a trailing %."""

    model_config = ConfigDict(extra="forbid")

    max_top1_drop: Threshold | None = None
    max_cosine_drop: Threshold | None = None
    max_sqnr_drop: Threshold | None = None
    max_latency_regression: Threshold | None = None
    max_size_increase: Threshold | None = None
    max_task_drop: dict[str, Threshold] = Field(default_factory=dict)


class CompareCheck(BaseModel):
    """One metric of one row. `regression` > 0 means worse; `passed` is None when not gated."""

    row: str
    metric: str
    old: float | None
    new: float | None
    regression: float | None
    threshold: str | None = None
    passed: bool | None = None
    detail: str = ""


class Comparison(BaseModel):
    old: str
    new: str
    checks: list[CompareCheck] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    hardware_differences: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failed(self) -> list[CompareCheck]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict:
        return {**self.model_dump(mode="json"), "passed": self.passed}

    def to_markdown(self) -> str:
        from nnship.validate.render.cells import fmt

        icon = "✅ passed" if self.passed else "❌ regression"
        lines = [
            f"## nnship compare: {icon}",
            "",
            f"`{self.new}` against stored `{self.old}`",
            "",
            "| artifact | metric | stored | current | regression | threshold | status |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            status = {True: "pass", False: "**FAIL**", None: "info"}[c.passed]
            lines.append(
                f"| {c.row} | {c.metric} | {fmt(c.old, 4)} | {fmt(c.new, 4)} | "
                f"{fmt(c.regression, 4)} | {c.threshold or '-'} | {status} |"
            )
        notes = [
            f"⚠️ different hardware, latency not comparable: {d}" for d in self.hardware_differences
        ] + self.notes
        notes += [f"{c.row} {c.metric}: {c.detail}" for c in self.checks if c.detail]
        if notes:
            lines += ["", *[f"- {n}" for n in notes]]
        return "\n".join(lines) + "\n"


def _top1(row: Row, use_accuracy: bool) -> float | None:
    cls = row.classification
    if cls is None:
        return None
    return cls.accuracy if use_accuracy else cls.top1_agreement


def _sqnr(row: Row) -> float | None:
    if not row.outputs or any(o.nonfinite_count for o in row.outputs):
        return None
    value, _ = row.worst("sqnr_db")
    return math.inf if value is None else value


def _latency(old: Row, new: Row) -> tuple[float | None, float | None, str]:
    for stats in old.latency:
        other = new.latency_at(stats.batch_size)
        if other is not None:
            return stats.p50_ms, other.p50_ms, f"p50 at batch {stats.batch_size}"
    return None, None, "no common latency batch size"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _check(
    row: str,
    metric: str,
    old: float | None,
    new: float | None,
    threshold: Threshold | None,
    *,
    higher_is_worse: bool,
    detail: str = "",
) -> CompareCheck:
    if old is None or new is None:
        passed = False if threshold is not None and old is not None else None
        why = "not measured in the current report" if old is not None else "not in stored report"
        return CompareCheck(
            row=row, metric=metric, old=old, new=new, regression=None,
            threshold=str(threshold) if threshold else None, passed=passed,
            detail=f"{why}; {detail}" if detail else why,
        )  # fmt: skip
    if math.isinf(old) and math.isinf(new):
        regression = 0.0
    else:
        regression = (new - old) if higher_is_worse else (old - new)
    passed = None
    if threshold is not None:
        if threshold.relative:
            limit = threshold.value * abs(old) if math.isfinite(old) else math.inf
        else:
            limit = threshold.value
        passed = bool(regression <= limit + 1e-12)
    return CompareCheck(
        row=row, metric=metric, old=_finite(old), new=_finite(new), regression=_finite(regression),
        threshold=str(threshold) if threshold else None, passed=passed, detail=detail,
    )  # fmt: skip


def _fingerprint_mismatches(old: Report, new: Report) -> tuple[list[str], list[str]]:
    mismatches, unknown = [], []
    for what, a, b in (
        ("model", old.model.fingerprint, new.model.fingerprint),
        ("data", old.data.fingerprint, new.data.fingerprint),
    ):
        if a is None or b is None:
            unknown.append(f"{what} fingerprint missing in a report: cannot verify it matches")
        elif a != b:
            mismatches.append(f"{what} fingerprints differ ({a[:12]} vs {b[:12]})")
    return mismatches, unknown


def _task_metric_notes(
    old: Report, new: Report, thresholds: CompareThresholds, allow: bool, names: tuple[str, str]
) -> list[str]:
    """Refuse (`ReportError`) task metrics configured differently (unless `allow`) and task
    thresholds on values neither report has; the notes to add otherwise."""
    a, b = old.task_metric, new.task_metric
    notes = []
    if a is not None and b is not None and a != b:
        changed = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
        if not allow:
            raise ReportError(
                f"Refusing to compare '{names[1]}' with '{names[0]}': their task metrics are "
                f"configured differently ({', '.join(changed)}: {[a.get(k) for k in changed]} vs "
                f"{[b.get(k) for k in changed]}), so their values measure different things; "
                "pass --allow-metric-mismatch to compare anyway."
            )
        notes.append(f"allowed task metric mismatch: {', '.join(changed)} differ")
    elif (a is None) != (b is None):
        which = names[0] if a is None else names[1]
        notes.append(f"'{which}' has no task metric: its values are not compared")
    known = {n for report in (old, new) for row in report.rows for n in row.task_metrics}
    unknown = sorted(set(thresholds.max_task_drop) - known)
    if unknown:
        raise ReportError(
            f"--max-task-drop names {unknown}, which neither report has "
            f"(task metric values: {', '.join(sorted(known)) or 'none'})"
        )
    return notes


def compare_reports(
    old: Report,
    new: Report,
    thresholds: CompareThresholds | None = None,
    *,
    allow_mismatch: bool = False,
    allow_hardware_mismatch: bool = False,
    allow_metric_mismatch: bool = False,
    old_name: str = "stored",
    new_name: str = "current",
) -> Comparison:
    """Check `new` against the stored `old` report; see the module docstring for the rules."""
    thresholds = thresholds or CompareThresholds()
    mismatches, unknown = _fingerprint_mismatches(old, new)
    if mismatches and not allow_mismatch:
        raise ReportError(
            f"Refusing to compare '{new_name}' with '{old_name}': "
            + "; ".join(mismatches)
            + ". They measure different models or data; pass --allow-mismatch to compare anyway "
            "(e.g. a retrained model on the same evaluation set)."
        )
    task_notes = _task_metric_notes(
        old, new, thresholds, allow_metric_mismatch, (old_name, new_name)
    )
    hw = hardware_differences(old.environment, new.environment)
    if hw and thresholds.max_latency_regression is not None and not allow_hardware_mismatch:
        raise ReportError(
            f"Refusing to gate latency across different hardware ({'; '.join(hw)}): measure "
            "both reports on the same machine type, drop --max-latency-regression, or pass "
            "--allow-hardware-mismatch to compare anyway (flagged in the summary)."
        )
    result = Comparison(old=old_name, new=new_name, hardware_differences=hw)
    result.notes += [f"allowed mismatch: {m}" for m in mismatches] + unknown + task_notes
    if old.environment.threads != new.environment.threads:
        result.notes.append(
            f"thread settings differ: {old.environment.threads} vs {new.environment.threads}"
        )
    new_rows = {r.label: r for r in new.rows}
    for old_row in old.rows:
        row = new_rows.pop(old_row.label, None)
        if row is None:
            result.checks.append(
                CompareCheck(
                    row=old_row.label,
                    metric="present",
                    old=None,
                    new=None,
                    regression=None,
                    passed=False,
                    detail="row missing from the current report",
                )  # fmt: skip
            )
            continue
        result.checks += _row_checks(old, new, old_row, row, thresholds, hw)
    result.notes += [f"new row '{label}' has no stored counterpart" for label in new_rows]
    return result


def _size_mb(row: Row) -> float | None:
    return None if row.size_bytes is None else row.size_bytes / 1e6


def _row_checks(
    old: Report,
    new: Report,
    a: Row,
    b: Row,
    t: CompareThresholds,
    hw: list[str],
) -> list[CompareCheck]:
    label = a.label
    use_acc = old.data.has_labels and new.data.has_labels
    cos_a, _ = a.worst("cosine_mean")
    cos_b, _ = b.worst("cosine_mean")
    lat_a, lat_b, lat_where = _latency(a, b)
    lat_detail = lat_where + (" (different hardware: not comparable)" if hw else "")
    checks = []
    if a.classification is not None or b.classification is not None:
        checks.append(
            _check(label, "accuracy %" if use_acc else "top-1 agreement %", _top1(a, use_acc),
                   _top1(b, use_acc), t.max_top1_drop, higher_is_worse=False)
        )  # fmt: skip
    checks.append(_check(label, "cosine", cos_a, cos_b, t.max_cosine_drop, higher_is_worse=False))
    checks.append(
        _check(label, "SQNR dB", _sqnr(a), _sqnr(b), t.max_sqnr_drop, higher_is_worse=False)
    )
    # across hardware we only get here without a latency gate, or with it explicitly allowed
    checks.append(
        _check(label, "latency ms", lat_a, lat_b, t.max_latency_regression, higher_is_worse=True,
               detail=lat_detail if hw or lat_a is None else "")
    )  # fmt: skip
    if _size_mb(a) is not None or _size_mb(b) is not None:
        checks.append(
            _check(label, "size MB", _size_mb(a), _size_mb(b), t.max_size_increase,
                   higher_is_worse=True)
        )  # fmt: skip
    if old.task_metric is not None and new.task_metric is not None:
        checks += _task_checks(label, a, b, t, _metric_config(new.task_metric))
    return checks


def _metric_config(data: dict[str, Any]) -> BaseModel | None:
    """The stored configuration as a model, for which way a user function's values go (a
    configuration this nnship cannot read counts every value as higher-is-better)."""
    try:
        return parse_metric(data)
    except ValidationError:
        return None


def _task_checks(
    label: str, a: Row, b: Row, t: CompareThresholds, config: BaseModel | None
) -> list[CompareCheck]:
    names = [*a.task_metrics, *(n for n in b.task_metrics if n not in a.task_metrics)]
    return [
        _check(label, f"task {name}", a.task_metrics.get(name), b.task_metrics.get(name),
               t.max_task_drop.get(name), higher_is_worse=not higher_is_better(name, config))
        for name in names
    ]  # fmt: skip
