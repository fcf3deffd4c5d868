"""How close a re-run must be to a bundle's stored outputs (numpy only).

Rule (docs/bundle.md, "Tolerance"): an output matches its expected array when every element
satisfies `|got - expected| <= atol + rtol * |expected|` (the `np.allclose` test), OR, for float
outputs, every sample's cosine similarity to the expected sample is at least `min_cosine`.

The numbers are derived per artifact when the bundle is written, from what was measured on the
build machine:

    observed   = the largest |difference| between the expected outputs and re-runs of the same
                 artifact with 1 and 2 threads (and a fresh session), over all outputs
    drift      = the largest |difference| between the artifact and the float ONNX reference
                 on the same samples (0 for the float artifacts themselves)
    scale      = the largest |expected| value
    atol       = max(4 * observed, DRIFT_SHARE * drift, 1e-5 * scale, 1e-7)
    rtol       = 1e-5
    min_cosine = 1 - max(4 * (1 - worst re-run cosine), DRIFT_SHARE * (1 - worst cosine to the
                 float reference), 1e-6)

The factor 4 is the margin over what re-runs on this machine moved. The drift share covers
what re-runs here cannot show: another CPU (another instruction set, another kernel) may round
a low-precision intermediate value differently; a quarter of the artifact's own quantization
error against float is the allowance for that. It was not measured across machines: a device
whose outputs fail the check by a little should be compared on the same class of hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MARGIN = 4.0
DRIFT_SHARE = 0.25
RTOL = 1e-5
MIN_REL_ATOL = 1e-5
MIN_ATOL = 1e-7
MIN_COSINE_SLACK = 1e-6


def per_sample_cosine(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cosine of each sample (axis 0) of two arrays; two zero vectors: 1, one zero vector: 0
    (the rule of `nnship.metrics.drift.cosine`)."""
    a = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1) if np.ndim(ref) else None
    b = np.asarray(out, dtype=np.float64).reshape(len(out), -1) if np.ndim(out) else None
    if a is None or b is None:
        return np.array([1.0 if float(ref) == float(out) else 0.0])
    dot = np.sum(a * b, axis=1)
    na, nb = np.sum(a * a, axis=1), np.sum(b * b, axis=1)
    denom = np.sqrt(na * nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), 0.0)
    cos = np.where((na == 0) & (nb == 0), 1.0, cos)
    return np.clip(cos, -1.0, 1.0)


@dataclass(frozen=True)
class OutputCheck:
    name: str
    passed: bool
    max_abs_error: float
    min_cosine: float | None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "max_abs_error": self.max_abs_error,
            "min_cosine": self.min_cosine,
            "reason": self.reason,
        }


def check_output(
    name: str, got: np.ndarray, expected: np.ndarray, *, atol: float, rtol: float, min_cosine: float
) -> OutputCheck:
    """Apply the rule above to one output."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return OutputCheck(
            name, False, float("inf"), None, f"shape {got.shape} != expected {expected.shape}"
        )
    if got.size == 0:
        return OutputCheck(name, True, 0.0, None)
    g, e = got.astype(np.float64), expected.astype(np.float64)
    if not np.all(np.isfinite(g)):
        return OutputCheck(name, False, float("inf"), None, "non-finite values")
    diff = np.abs(g - e)
    max_abs = float(diff.max())
    close = bool(np.all(diff <= atol + rtol * np.abs(e)))
    is_float = np.issubdtype(expected.dtype, np.floating)
    cos = float(per_sample_cosine(e, g).min()) if is_float and e.ndim >= 1 else None
    passed = close or (cos is not None and cos >= min_cosine)
    reason = ""
    if not passed:
        cos_text = f", min cosine {cos:.6f} < {min_cosine:.6f}" if cos is not None else ""
        reason = f"max |diff| {max_abs:.3g} > atol {atol:.3g} + rtol {rtol:g}*|expected|{cos_text}"
    return OutputCheck(name, passed, max_abs, cos, reason)


def derive_tolerance(
    expected: dict[str, np.ndarray],
    reruns: list[dict[str, np.ndarray]],
    reference: dict[str, np.ndarray] | None,
) -> dict[str, float]:
    """`{"atol", "rtol", "min_cosine"}` by the rule above (`reference`: the float ONNX's
    outputs on the same samples, None when there is none)."""
    observed, worst_cos, drift, drift_cos, scale = 0.0, 1.0, 0.0, 1.0, 0.0
    for name, exp in expected.items():
        e = np.asarray(exp, dtype=np.float64)
        if e.size == 0:
            continue
        scale = max(scale, float(np.abs(e).max()))
        for rerun in reruns:
            r = np.asarray(rerun[name], dtype=np.float64)
            observed = max(observed, float(np.abs(r - e).max()))
            if e.ndim >= 1:
                worst_cos = min(worst_cos, float(per_sample_cosine(e, r).min()))
        if reference is not None and name in reference:
            f = np.asarray(reference[name], dtype=np.float64)
            if f.shape == e.shape:
                drift = max(drift, float(np.abs(f - e).max()))
                if e.ndim >= 1:
                    drift_cos = min(drift_cos, float(per_sample_cosine(f, e).min()))
    atol = max(MARGIN * observed, DRIFT_SHARE * drift, MIN_REL_ATOL * scale, MIN_ATOL)
    slack = max(MARGIN * (1 - worst_cos), DRIFT_SHARE * (1 - drift_cos), MIN_COSINE_SLACK)
    return {
        "atol": round_up(atol),
        "rtol": RTOL,
        "min_cosine": max(-1.0, 1.0 - round_up(slack)),
    }


def round_up(value: float) -> float:
    """`value` rounded up to one significant digit (3.2e-4 -> 4e-4), so the last bits of a
    re-run's noise do not change the manifest's bytes from one bundling to the next."""
    if value <= 0:
        return 0.0
    exponent = math.floor(math.log10(value))
    mantissa = math.ceil(round(value / 10**exponent, 9))
    return float(f"{mantissa}e{exponent}")
