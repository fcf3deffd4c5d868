"""Drift and classification metrics on hand-computed arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnship.core.errors import DataError
from nnship.metrics.drift import (
    ClassificationAccumulator,
    DriftAccumulator,
    is_classification_output,
    match_outputs,
    per_sample_cosine,
    sqnr_db,
)


def test_drift_metrics_match_hand_computation() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    out = np.array([[1.0, 1.0], [0.0, 2.5]])
    acc = DriftAccumulator("y")
    acc.update(ref, out)
    r = acc.result()
    assert r["max_abs_error"] == pytest.approx(1.0)
    assert r["mean_abs_error"] == pytest.approx((0 + 1 + 0 + 0.5) / 4)
    # sample 0: cos = 1 / (1 * sqrt(2)); sample 1: same direction -> 1
    assert r["cosine_mean"] == pytest.approx((1 / math.sqrt(2) + 1.0) / 2)
    assert r["cosine_min"] == pytest.approx(1 / math.sqrt(2))
    assert r["cosine_global"] == pytest.approx(6.0 / math.sqrt(5.0 * 8.25))
    # SQNR = 10 log10(sum ref^2 / sum err^2) = 10 log10(5 / 1.25)
    assert r["sqnr_db"] == pytest.approx(10 * math.log10(4.0))
    assert r["exact_match"] is False


def test_streaming_over_batches_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((10, 3, 2))
    out = ref + 0.1 * rng.standard_normal(ref.shape)
    whole, parts = DriftAccumulator("y"), DriftAccumulator("y")
    whole.update(ref, out)
    for start in range(0, 10, 3):
        parts.update(ref[start : start + 3], out[start : start + 3])
    for key, value in whole.result().items():
        assert parts.result()[key] == pytest.approx(value)


def test_identical_outputs_have_infinite_sqnr_as_none() -> None:
    acc = DriftAccumulator("y")
    acc.update(np.ones((2, 3)), np.ones((2, 3)))
    r = acc.result()
    assert r["sqnr_db"] is None and r["exact_match"] is True
    assert r["cosine_mean"] == 1.0 and r["max_abs_error"] == 0.0


def test_nonfinite_candidate_output_makes_metrics_nan() -> None:
    acc = DriftAccumulator("y")
    acc.update(np.ones((2, 2)), np.array([[1.0, np.nan], [1.0, np.inf]]))
    r = acc.result()
    assert r["nonfinite_count"] == 2 and math.isnan(r["cosine_mean"])


def test_shape_mismatch_names_output_and_shapes() -> None:
    acc = DriftAccumulator("logits")
    with pytest.raises(DataError, match=r"'logits'.*\(2, 4\).*\(2, 3\)"):
        acc.update(np.zeros((2, 3)), np.zeros((2, 4)), label="ort")


def test_zero_vector_cosine_rules_and_sqnr_edge_cases() -> None:
    cos = per_sample_cosine(np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert cos.tolist() == [1.0, 0.0]
    assert sqnr_db(1.0, 0.0) is None
    assert sqnr_db(0.0, 1.0) == -300.0
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)


def test_agreement_and_accuracy() -> None:
    ref = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [1, 0, 0, 0, 0, 0]], dtype=float)
    # sample 0: same top-1; sample 1: candidate top-1 is 4, baseline's 5 is its 2nd;
    # sample 2: baseline top-1 (0) is the candidate's last -> outside its top 5
    out = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 9, 5], [0, 1, 1, 1, 1, 1]], dtype=float)
    labels = np.array([0, 4, 3])
    acc = ClassificationAccumulator("logits")
    acc.update(ref, out, labels)
    r = acc.result()
    assert r.top1_agreement == pytest.approx(100 / 3)
    assert r.top5_agreement == pytest.approx(200 / 3)
    assert r.accuracy == pytest.approx(200 / 3)  # candidate right on samples 0 and 1
    base = ClassificationAccumulator("logits")
    base.update(ref, None, labels)
    assert base.result().accuracy == pytest.approx(100 / 3)


def test_accuracy_is_none_without_labels_and_bad_labels_are_refused() -> None:
    acc = ClassificationAccumulator("logits")
    acc.update(np.eye(3), np.eye(3), None)
    assert acc.result().accuracy is None and acc.result().top1_agreement == 100.0
    with pytest.raises(DataError, match="integer class ids"):
        acc.update(np.eye(3), np.eye(3), np.array([0.5, 1.0, 2.0]))
    with pytest.raises(DataError, match="Labels of shape"):
        acc.update(np.eye(3), np.eye(3), np.zeros((3, 2), dtype=int))


def test_task_detection_and_output_matching() -> None:
    assert is_classification_output((8, 10)) and not is_classification_output((8, 1))
    assert not is_classification_output((8, 3, 4))
    assert match_outputs(["a", "b"], ["b", "a"]) == {"a": "a", "b": "b"}
    assert match_outputs(["output"], ["logits"]) == {"output": "logits"}
    with pytest.raises(DataError, match="cannot be matched"):
        match_outputs(["a", "b"], ["c"], label="ort")
