"""The quantizer scores outputs with the validator's metrics: an all-zero quantized output is
a cosine of 0 (it used to score a perfect 1.0 in method "auto", the fallback and the budget)."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.backends.onnxruntime.outputs import Outputs
from nnship.metrics.drift import DriftAccumulator
from nnship.quantize.evaluate import budget_misses, compare, score


def _outputs(array: np.ndarray) -> Outputs:
    return Outputs({"y": array.astype(np.float32)}, None)


def test_an_all_zero_output_scores_cosine_zero_like_the_validator():
    ref = np.random.default_rng(0).standard_normal((16, 10))
    zeros = np.zeros_like(ref)
    metrics = compare(_outputs(ref), _outputs(zeros))
    assert metrics["cosine"] == 0.0
    drift = DriftAccumulator("y")
    drift.update(ref.astype(np.float32), zeros.astype(np.float32))
    assert metrics["cosine"] == drift.result()["cosine_mean"]
    assert budget_misses(metrics, None, 0.9) == ["cosine 0.00000 < 0.9"]


def test_an_all_zero_output_loses_to_a_noisy_one():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((16, 10))
    noisy = ref + 0.1 * rng.standard_normal(ref.shape)
    assert score(compare(_outputs(ref), _outputs(noisy))) > score(
        compare(_outputs(ref), _outputs(np.zeros_like(ref)))
    )


def test_two_zero_outputs_agree_and_sqnr_matches_the_validator():
    zeros = np.zeros((4, 3))
    assert compare(_outputs(zeros), _outputs(zeros))["cosine"] == 1.0
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((8, 5))
    out = ref + 0.01 * rng.standard_normal(ref.shape)
    drift = DriftAccumulator("y")
    drift.update(ref.astype(np.float32), out.astype(np.float32))
    assert compare(_outputs(ref), _outputs(out))["sqnr_db"] == pytest.approx(
        drift.result()["sqnr_db"]
    )
    assert compare(_outputs(ref), _outputs(ref))["sqnr_db"] == 200.0  # identical: the cap
