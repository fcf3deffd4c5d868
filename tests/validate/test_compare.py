"""compare_reports: pass, fail, fingerprint and hardware mismatches, thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from _validate_helpers import classification_data, linear_classifier

from nnship.core.errors import ReportError
from nnship.validate import LatencyConfig, Report, ValidateConfig, validate
from nnship.validate.compare import CompareThresholds, Threshold, compare_reports


@pytest.fixture(scope="module")
def stored() -> Report:
    _, _, make = linear_classifier()
    data = classification_data(labels=np.arange(40) % 4)
    config = ValidateConfig(
        latency=LatencyConfig(runs=5, max_warmup_runs=2, min_warmup_runs=1, stable_window=2)
    )
    report = validate(make(), {"int8": make(noise=0.1)}, data, config=config,
                      model_fingerprint="m" * 64)  # fmt: skip
    report.rows[0].size_bytes = 1_000_000
    return report


def _copy(report: Report) -> Report:
    return report.model_copy(deep=True)


def test_identical_reports_pass_every_threshold(stored: Report) -> None:
    t = CompareThresholds(max_top1_drop=Threshold.parse("0"), max_latency_regression=Threshold.parse("0%"),
                          max_size_increase=Threshold.parse("0"), max_cosine_drop=Threshold.parse("0"),
                          max_sqnr_drop=Threshold.parse("0"))  # fmt: skip
    result = compare_reports(stored, _copy(stored), t)
    assert result.passed and {c.metric for c in result.checks} >= {
        "latency ms",
        "size MB",
        "cosine",
    }
    assert all(c.passed for c in result.checks)


def test_accuracy_drop_beyond_threshold_fails(stored: Report) -> None:
    new = _copy(stored)
    new.rows[0].classification.accuracy -= 0.5
    assert compare_reports(
        stored, new, CompareThresholds(max_top1_drop=Threshold.parse("0.6"))
    ).passed
    result = compare_reports(stored, new, CompareThresholds(max_top1_drop=Threshold.parse("0.3")))
    assert not result.passed
    (failed,) = result.failed
    assert failed.metric == "accuracy %" and failed.regression == pytest.approx(0.5)
    assert "FAIL" in result.to_markdown()


def test_relative_latency_threshold(stored: Report) -> None:
    new = _copy(stored)
    new.rows[0].latency[0].p50_ms = stored.rows[0].latency[0].p50_ms * 1.25
    gate = lambda pct: CompareThresholds(max_latency_regression=Threshold.parse(pct))  # noqa: E731
    assert compare_reports(stored, new, gate("30%")).passed
    assert not compare_reports(stored, new, gate("10%")).passed


def test_different_model_or_data_is_refused_unless_allowed(stored: Report) -> None:
    new = _copy(stored)
    new.model.fingerprint = "n" * 64
    with pytest.raises(ReportError, match="model fingerprints differ.*--allow-mismatch"):
        compare_reports(stored, new)
    new.data.fingerprint = "d" * 64
    with pytest.raises(ReportError, match="data fingerprints differ"):
        compare_reports(stored, new)
    result = compare_reports(stored, new, allow_mismatch=True)
    assert any("allowed mismatch" in n for n in result.notes)


def test_hardware_mismatch_refuses_latency_gate_and_flags_otherwise(stored: Report) -> None:
    new = _copy(stored)
    new.environment.cpu_model = "Some Other CPU"
    gate = CompareThresholds(max_latency_regression=Threshold.parse("10%"))
    with pytest.raises(ReportError, match="different hardware.*cpu_model"):
        compare_reports(stored, new, gate)
    flagged = compare_reports(stored, new, gate, allow_hardware_mismatch=True)
    assert flagged.hardware_differences and "different hardware" in flagged.to_markdown()
    ungated = compare_reports(stored, new)
    latency = next(c for c in ungated.checks if c.metric == "latency ms")
    assert latency.passed is None and "not comparable" in latency.detail


def test_missing_row_fails_and_new_row_is_noted(stored: Report) -> None:
    new = _copy(stored)
    new.rows[0].label = "fp16"
    result = compare_reports(stored, new)
    assert not result.passed and result.failed[0].metric == "present"
    assert any("fp16" in n for n in result.notes)


@pytest.mark.parametrize("text, value, relative", [("10%", 0.1, True), ("0.3", 0.3, False)])
def test_threshold_parsing(text, value, relative) -> None:
    t = Threshold.parse(text)
    assert t.value == pytest.approx(value) and t.relative is relative


@pytest.mark.parametrize("text", ["ten", "-1", "5%%", "nan"])
def test_bad_thresholds_name_the_flag(text) -> None:
    with pytest.raises(ReportError, match="--max-top1-drop"):
        Threshold.parse(text, name="--max-top1-drop")
