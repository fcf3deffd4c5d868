"""Task metric values in the report: gates, the renderings (terminal, Markdown, HTML), compare,
and the `[validate]` checks of task gates."""

from __future__ import annotations

import io
import re

import pytest
from pydantic import ValidationError
from rich.console import Console

from nnship.core.errors import ReportError
from nnship.validate import Gates, Report, Row, ValidateConfig, check_gates
from nnship.validate.compare import CompareThresholds, Threshold, compare_reports
from nnship.validate.render.cells import summary_columns
from nnship.validate.render.html import render_html
from nnship.validate.render.markdown import report_markdown
from nnship.validate.render.terminal import print_report
from nnship.validate.report import TASK_SKIPPED, LatencyStats

DETECTION = {"kind": "detection", "output": "output0", "score_threshold": 0.25}


def _latency(ms: float) -> LatencyStats:
    return LatencyStats(
        batch_size=1, runs=3, warmup_runs=1, warmup_stable=True, p50_ms=ms, p90_ms=ms, p99_ms=ms,
        mean_ms=ms, std_ms=0.0, min_ms=ms, max_ms=ms, cv=0.0, throughput_per_s=1000 / ms,
    )  # fmt: skip


def make_report(f1: float = 0.97, metric: dict | None = DETECTION) -> Report:
    def row(label: str, values: dict, ms: float) -> Row:
        return Row(label=label, task_metrics=values, latency=[_latency(ms)])

    return Report(
        model={"fingerprint": "m" * 64},
        data={"fingerprint": "d" * 64},
        task_metric=metric,
        baseline=row("onnx/fp32", {}, 4.0),
        rows=[
            row("ort/int8", {"det_precision": 0.99, "det_recall": 0.95, "det_f1": f1}, 1.0),
            row("ov/int8", {"det_precision": 0.2, "det_recall": 0.1, "det_f1": 0.13}, 0.8),
        ],
    )


def test_task_gates_read_the_rows_values_and_fail_when_missing() -> None:
    report = make_report()
    report.rows[1].task_metrics = {}
    report.rows[1].extra[TASK_SKIPPED] = "output 'output0' has 3 NaN/Inf values"
    gates = Gates(task={"det_f1": ">= 0.95", "det_recall": "<= 0.96"}, min_cosine=0.5)
    verdicts = check_gates(gates, report.rows)
    by = {(v.gate, v.row): v for v in verdicts}
    assert [v.gate for v in verdicts][-4:] == ["task.det_f1"] * 2 + ["task.det_recall"] * 2
    assert by["task.det_f1", "ort/int8"].passed and by["task.det_f1", "ort/int8"].value == 0.97
    assert by["task.det_recall", "ort/int8"].passed  # <= 0.96
    missing = by["task.det_f1", "ov/int8"]
    assert not missing.passed and missing.value is None
    assert (
        missing.detail
        == "not measured: task metric not computed: output 'output0' has 3 NaN/Inf values"
    )


def test_task_gates_are_checked_against_the_metric_in_the_config() -> None:
    with pytest.raises(ValidationError, match="no task metric is set"):
        ValidateConfig.model_validate({"gates": {"task": {"det_f1": ">= 0.9"}}})
    with pytest.raises(ValidationError, match="does not compute"):
        ValidateConfig.model_validate(
            {"metric": DETECTION, "gates": {"task": {"det_F1": ">= 0.9"}}}
        )
    with pytest.raises(ValidationError, match="expected"):
        ValidateConfig.model_validate({"metric": DETECTION, "gates": {"task": {"det_f1": "> 1"}}})
    user = {"kind": "callable", "function": "m.py:f"}
    config = ValidateConfig.model_validate({"metric": user, "gates": {"task": {"wer": "<= 0.1"}}})
    assert config.gates.task_gates()[0].op == "<="


def test_every_rendering_shows_a_column_per_value_primary_first() -> None:
    report = make_report()
    columns = summary_columns(report)
    assert columns[4:7] == ("det_f1", "det_precision", "det_recall")
    markdown = report_markdown(report)
    assert "| det_f1 | det_precision | det_recall |" in markdown
    assert "| ort/int8 | - | 1.000 | 4.00x | 0.9700 | 0.9900 | 0.9500 |" in markdown
    assert "task metric: detection: output=output0, score_threshold=0.25" in markdown
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=250))
    assert re.search(r"det_f1 .* det_precision .* det_recall", buffer.getvalue())
    assert "0.9700" in buffer.getvalue()
    html = render_html(report)
    assert "<th>det_f1</th>" in html or ">det_f1<" in html
    assert "det_f1 (task metric)" in html  # the scatter's y axis


def test_the_scatter_falls_back_without_a_task_metric() -> None:
    html = render_html(make_report(metric=None))
    assert "(task metric)" not in html


def test_compare_checks_each_task_value_in_its_direction() -> None:
    old, new = make_report(f1=0.97), make_report(f1=0.94)
    thresholds = CompareThresholds(max_task_drop={"det_f1": Threshold.parse("0.01")})
    result = compare_reports(old, new, thresholds)
    f1 = next(c for c in result.checks if c.row == "ort/int8" and c.metric == "task det_f1")
    assert f1.regression == pytest.approx(0.03) and f1.passed is False
    assert not result.passed
    assert compare_reports(old, new, CompareThresholds(
        max_task_drop={"det_f1": Threshold.parse("5%")})).passed  # fmt: skip
    # lower is better for a character error rate: a rise is the regression
    seq = {"kind": "sequence"}
    a, b = make_report(metric=seq), make_report(metric=seq)
    a.rows[0].task_metrics, b.rows[0].task_metrics = {"cer": 0.02}, {"cer": 0.01}
    result = compare_reports(a, b, CompareThresholds(max_task_drop={"cer": Threshold.parse("0")}))
    cer = next(c for c in result.checks if c.row == "ort/int8" and c.metric == "task cer")
    assert cer.regression == pytest.approx(-0.01) and cer.passed


def test_compare_refuses_different_metric_configs_unless_allowed() -> None:
    old = make_report()
    new = make_report(metric={**DETECTION, "score_threshold": 0.5})
    with pytest.raises(ReportError, match="score_threshold.*--allow-metric-mismatch"):
        compare_reports(old, new)
    result = compare_reports(old, new, allow_metric_mismatch=True)
    assert any("score_threshold" in note for note in result.notes)
    # a report without a task metric: compared, its task values are not, and it is said
    plain = compare_reports(make_report(metric=None), new)
    assert not any(c.metric.startswith("task") for c in plain.checks)
    assert any("has no task metric" in note for note in plain.notes)


def test_compare_refuses_a_task_threshold_on_a_value_neither_report_has() -> None:
    thresholds = CompareThresholds(max_task_drop={"map_iou": Threshold.parse("0.1")})
    with pytest.raises(ReportError, match=r"names \['map_iou'\].*det_f1"):
        compare_reports(make_report(), make_report(), thresholds)


def test_task_values_survive_the_json_round_trip(tmp_path) -> None:
    report = make_report()
    loaded = Report.load(report.save(tmp_path / "report.json"))
    assert loaded.rows[0].task_metrics == report.rows[0].task_metrics
    assert loaded.task_metric == DETECTION and loaded.primary_task_metric() == "det_f1"
