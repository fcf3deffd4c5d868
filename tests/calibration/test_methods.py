"""Range methods on one tensor's statistics: each really applied, each tighter than minmax on
heavy-tailed data, entropy equal to TensorRT's reference algorithm."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nnship.calibration.histogram import AdaptiveHistogram
from nnship.calibration.methods import METHODS, compute_range, kl_threshold_bin
from nnship.calibration.table import TensorStatistics
from nnship.core.errors import CalibrationError


def stats_of(values: np.ndarray, num_bins: int = 2048, name: str = "t") -> TensorStatistics:
    hist = AdaptiveHistogram(num_bins)
    for chunk in np.array_split(values.astype(np.float32), 4):
        hist.update(chunk)
    return TensorStatistics(name, "float32", values.size, 0, float(values.min()),
                            float(values.max()), hist.counts.copy(), hist.amax)  # fmt: skip


@pytest.fixture(scope="module")
def heavy_tailed() -> TensorStatistics:
    rng = np.random.default_rng(0)
    return stats_of(rng.standard_t(df=3, size=200_000))  # rare, large outliers


@pytest.fixture(scope="module")
def relu_like() -> TensorStatistics:
    rng = np.random.default_rng(1)
    return stats_of(np.maximum(rng.laplace(size=200_000), 0.0))


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_clipping_methods_are_tighter_than_minmax_on_heavy_tails(heavy_tailed, method, symmetric):
    minmax = compute_range(heavy_tailed, "minmax", symmetric=symmetric)
    got = compute_range(heavy_tailed, method, symmetric=symmetric)
    assert got.method == method  # really applied, not a silent MinMax
    assert got.width < 0.8 * minmax.width
    assert got.lo < 0 < got.hi


@pytest.mark.parametrize("method", METHODS)
def test_non_negative_tensor_keeps_a_zero_lower_bound_when_asymmetric(relu_like, method):
    got = compute_range(relu_like, method, symmetric=False)
    assert got.lo == 0.0 and got.hi > 0.0
    assert got.hi <= relu_like.max + 1e-6


def test_symmetric_ranges_are_symmetric(heavy_tailed):
    for method in METHODS:
        r = compute_range(heavy_tailed, method, symmetric=True)
        assert r.lo == -r.hi


def test_percentile_matches_the_empirical_quantile():
    values = np.random.default_rng(2).uniform(0.0, 1.0, size=100_000)
    r = compute_range(stats_of(values), "percentile", percentile=99.0, symmetric=True)
    assert r.hi == pytest.approx(np.quantile(values, 0.99), abs=2e-3)


def test_mse_does_not_clip_uniform_data():
    # Clipping a uniform distribution only adds error: the MSE range must stay near min/max.
    values = np.random.default_rng(3).uniform(-1.0, 1.0, size=100_000)
    r = compute_range(stats_of(values), "mse", symmetric=True)
    assert r.hi > 0.97


def _reference_entropy_bin(bins: np.ndarray, num_levels: int = 128, start: int = 128) -> int:
    """Direct port of pytorch-quantization's `_compute_amax_entropy` loop (NVIDIA TensorRT
    tools), returning the chosen edge index."""
    from scipy.stats import entropy

    bins = bins.astype(np.float64).copy()
    bins[0] = bins[1]
    divergences, arguments = [], []
    for i in range(start, len(bins) + 1):
        space = np.linspace(0, i, num=num_levels + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        new_counts = np.zeros(num_levels)
        for idx, d in enumerate(digitized):
            if d != -1:
                new_counts[d] += bins[idx]
        for key, val in Counter(digitized).items():
            if key != -1:
                new_counts[key] /= val
        new_density = np.array([new_counts[d] if d != -1 else 0.0 for d in digitized])
        reference = bins[:i].copy()
        reference[-1] += bins[i:].sum()
        divergences.append(entropy(reference / reference.sum(), new_density / new_density.sum()))
        arguments.append(i)
    divergences = np.array(divergences)
    return arguments[len(divergences) - 1 - int(np.argmin(divergences[::-1]))]


def test_entropy_matches_the_tensorrt_reference_algorithm():
    rng = np.random.default_rng(4)
    values = np.abs(rng.standard_t(df=3, size=50_000))
    bins, _ = np.histogram(values, bins=400, range=(0, values.max()))
    assert kl_threshold_bin(bins, 128) == _reference_entropy_bin(bins)


def test_entropy_that_cannot_search_says_it_fell_back(heavy_tailed):
    rng = np.random.default_rng(5)
    coarse = stats_of(rng.standard_t(df=2, size=50_000), num_bins=128)
    r = compute_range(coarse, "entropy")
    assert r.method.startswith("minmax (entropy fell back")
    assert r.hi == pytest.approx(max(abs(coarse.min), abs(coarse.max)))


def test_constant_tensor_gets_its_value_and_says_so():
    stats = stats_of(np.full(100, 3.0))
    r = compute_range(stats, "entropy", symmetric=False)
    assert (r.lo, r.hi) == (3.0, 3.0) and "constant" in r.method


def test_unknown_method_lists_the_known_ones(heavy_tailed):
    with pytest.raises(CalibrationError, match="Unknown calibration method 'kl'.*minmax"):
        compute_range(heavy_tailed, "kl")


def test_bad_percentile_is_rejected(heavy_tailed):
    with pytest.raises(CalibrationError, match="percentile"):
        compute_range(heavy_tailed, "percentile", percentile=120.0)


def test_range_unpacks_as_lo_hi(heavy_tailed):
    lo, hi = compute_range(heavy_tailed, "minmax")
    assert (lo, hi) == (heavy_tailed.min, heavy_tailed.max)


@pytest.fixture(scope="module")
def spike_and_mode() -> TensorStatistics:
    """A standardized image with a constant background: 60 % of the values are exactly -0.75
    (one spike), the strokes form a second mode around 1.2 reaching 1.75."""
    rng = np.random.default_rng(6)
    spike = np.full(60_000, -0.75)
    mode = np.clip(rng.normal(1.2, 0.3, 40_000), -0.75, 1.75)
    return stats_of(np.concatenate([spike, mode]))


@pytest.mark.parametrize("symmetric", [True, False])
def test_plain_kl_clips_away_the_mode_beyond_a_spike(spike_and_mode, symmetric):
    # Why the guard exists: TensorRT's KL search stops just past the spike.
    r = compute_range(spike_and_mode, "entropy", symmetric=symmetric, entropy_guard=False)
    assert r.method == "entropy" and r.hi < 0.8


@pytest.mark.parametrize("symmetric", [True, False])
def test_entropy_on_a_bimodal_signed_tensor_keeps_both_modes(spike_and_mode, symmetric):
    r = compute_range(spike_and_mode, "entropy", symmetric=symmetric)
    assert r.lo <= -0.74 and r.hi >= 1.6
    assert r.method.startswith("mse (entropy rejected: the KL range")
    assert "clips" in r.method and "MSE-optimal" in r.method


def test_entropy_guard_keeps_kl_where_it_clips_by_design(heavy_tailed):
    # t(3): KL drops rare outliers (costing some MSE, within the limit) and stays KL.
    guarded = compute_range(heavy_tailed, "entropy")
    plain = compute_range(heavy_tailed, "entropy", entropy_guard=False)
    assert guarded == plain and guarded.method == "entropy"


def test_table_ranges_name_the_tensors_where_entropy_was_rejected(spike_and_mode, heavy_tailed):
    from nnship.calibration.table import CalibrationTable

    tensors = {"x": spike_and_mode, "y": heavy_tailed}
    table = CalibrationTable(tensors, "sha", "fp", 1, 2048)
    ranges = table.ranges("entropy")
    assert ranges["y"].method == "entropy"
    assert ranges["x"].method.startswith("mse (entropy rejected")
    assert table.ranges("entropy", entropy_guard=False)["x"].method == "entropy"


def test_entropy_matches_the_reference_on_a_sparse_spiky_histogram():
    # Empty bins (infinite KL candidates) and spikes, as discrete inputs give.
    rng = np.random.default_rng(7)
    bins = np.zeros(700)
    bins[rng.choice(700, 300, replace=False)] = rng.integers(1, 50, 300)
    bins[[150, 420]] = [5000, 3000]
    assert kl_threshold_bin(bins, 128) == _reference_entropy_bin(bins)
