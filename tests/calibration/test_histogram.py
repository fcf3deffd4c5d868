"""AdaptiveHistogram: exact re-binning, fixed memory, exact |x| fold."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.calibration.histogram import AdaptiveHistogram


def _stream(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # Each batch reaches further out, so the range grows several times by non-power-of-2 factors.
    return [rng.normal(scale=s, size=5000).astype(np.float32) for s in (0.1, 0.3, 1.0, 7.0)]


def test_growth_merges_counts_exactly_into_the_final_bins():
    hist = AdaptiveHistogram(num_bins=256)
    batches = _stream()
    for batch in batches:
        hist.update(batch)
    everything = np.concatenate(batches).astype(np.float64)
    direct, _ = np.histogram(everything, bins=hist.edges)
    assert hist.total == everything.size
    # Same counts as binning all values at once at the final edges (a value sitting within
    # rounding of an edge may land on either side).
    assert np.abs(direct - hist.counts).sum() <= 4


def test_memory_is_fixed_by_the_bin_count():
    hist = AdaptiveHistogram(num_bins=128)
    for batch in _stream():
        hist.update(batch)
        assert hist.counts.shape == (256,)
    assert hist.amax >= max(np.abs(b).max() for b in _stream())
    # Growth by the smallest integer factor keeps the range under twice the observed max|x|.
    assert hist.amax < 2 * max(np.abs(b).max() for b in _stream())


def test_abs_histogram_is_the_fold_of_the_signed_one():
    hist = AdaptiveHistogram(num_bins=64)
    values = np.array([-3.0, -1.0, -0.01, 0.0, 0.0, 0.02, 1.0, 2.5, 3.0], dtype=np.float32)
    hist.update(values)
    counts, edges = hist.abs_histogram()
    direct, _ = np.histogram(np.abs(values), bins=edges)
    assert counts.sum() == values.size
    np.testing.assert_array_equal(counts, direct)


def test_all_zero_batches_are_kept_until_a_range_exists():
    hist = AdaptiveHistogram(num_bins=16)
    hist.update(np.zeros(10, np.float32))
    assert hist.amax == 0.0 and hist.total == 10
    hist.update(np.array([1.0, -1.0], np.float32))
    assert hist.total == 12
    assert hist.abs_histogram()[0][0] == 10


def test_float32_min_values_do_not_overflow():
    hist = AdaptiveHistogram(num_bins=32)
    hist.update(np.array([0.0, 1.0], np.float32))
    hist.update(np.array([np.finfo(np.float32).min, 0.5], np.float32))
    assert np.isfinite(hist.amax) and hist.total == 4
    assert hist.counts[0] == 1  # the -3.4e38 value sits in the first bin


def test_rejects_too_few_bins():
    with pytest.raises(ValueError):
        AdaptiveHistogram(num_bins=2)
