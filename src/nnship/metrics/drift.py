"""Streaming accuracy and drift metrics of a candidate's outputs against the baseline's.

Everything accumulates sums batch by batch, so the validator never holds all outputs.
Formulas:
- max / mean absolute error over every element: max|r - o|, sum|r - o| / count.
- cosine similarity per sample (each sample's output flattened): r.o / (|r| |o|), averaged
  over samples (`cosine_mean`, worst sample `cosine_min`), and over all elements at once
  (`cosine_global`). Two zero vectors count as 1, one zero vector as 0.
- SQNR (dB) = 10 log10(sum r^2 / sum (r - o)^2). Identical outputs have infinite SQNR, stored as
  `None` with `exact_match=True` (JSON has no infinity); a zero reference with non-zero error
  is floored at -300 dB.
- top-1 agreement: argmax(candidate) == argmax(baseline); top-5 agreement: the baseline's top-1
  class is among the candidate's 5 highest logits (k = min(5, classes)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnship.core.errors import DataError
from nnship.metrics.results import ClassificationMetrics

SQNR_FLOOR_DB = -300.0


def is_classification_output(shape: Sequence[int]) -> bool:
    """True if an output of this shape looks like classification logits: 2-D [N, C], C >= 2."""
    return len(shape) == 2 and int(shape[1]) >= 2


def match_outputs(
    baseline: Sequence[str], candidate: Sequence[str], *, label: str = "candidate"
) -> dict[str, str]:
    """Map each baseline output name to the candidate output compared with it.

    By name when every baseline name exists in the candidate; otherwise by position when the
    counts agree (e.g. a user-supplied ONNX named its outputs differently). Raises `DataError`
    naming both lists otherwise.
    """
    if all(name in candidate for name in baseline):
        return {name: name for name in baseline}
    if len(baseline) == len(candidate):
        return dict(zip(baseline, candidate))
    raise DataError(
        f"Outputs of '{label}' {list(candidate)} cannot be matched to the baseline's "
        f"{list(baseline)}: names differ and counts differ ({len(candidate)} vs {len(baseline)})"
    )


class DriftAccumulator:
    """Accumulates drift metrics of one output over batches (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.samples = 0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.sum_ref_sq = 0.0
        self.sum_out_sq = 0.0
        self.sum_dot = 0.0
        self.sum_err_sq = 0.0
        self.cos_sum = 0.0
        self.cos_min = math.inf
        self.nonfinite = 0
        self.shape: tuple[int, ...] | None = None

    def update(self, reference: np.ndarray, output: np.ndarray, *, label: str = "") -> None:
        """Add one batch; both arrays share a leading batch axis and a shape."""
        ref = np.asarray(reference, dtype=np.float64)
        out = np.asarray(output, dtype=np.float64)
        if ref.shape != out.shape:
            who = f"'{label}' " if label else ""
            raise DataError(
                f"Output '{self.name}' of {who}has shape {tuple(out.shape)}, the baseline's has "
                f"{tuple(ref.shape)}"
            )
        self.shape = tuple(ref.shape[1:]) if ref.ndim else ()
        if ref.ndim == 0:
            ref, out = ref.reshape(1, 1), out.reshape(1, 1)
        finite = np.isfinite(out)
        self.nonfinite += int(out.size - finite.sum())
        diff = ref - out
        n = ref.shape[0]
        self.count += ref.size
        self.samples += n
        if ref.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))))
        self.sum_abs += float(np.sum(np.abs(diff)))
        self.sum_ref_sq += float(np.sum(ref * ref))
        self.sum_out_sq += float(np.sum(out * out))
        self.sum_dot += float(np.sum(ref * out))
        self.sum_err_sq += float(np.sum(diff * diff))
        cos = per_sample_cosine(ref.reshape(n, -1), out.reshape(n, -1))
        self.cos_sum += float(np.sum(cos))
        if cos.size:
            self.cos_min = min(self.cos_min, float(np.min(cos)))

    def result(self) -> dict[str, float | int | bool | None]:
        """Metrics as plain numbers (NaN when a candidate produced NaN/Inf)."""
        if self.samples == 0:
            raise DataError(f"Output '{self.name}': no samples were compared")
        bad = self.nonfinite > 0
        nan = float("nan")
        return {
            "max_abs_error": nan if bad else self.max_abs,
            "mean_abs_error": nan if bad else self.sum_abs / max(self.count, 1),
            "cosine_mean": nan if bad else self.cos_sum / self.samples,
            "cosine_min": nan if bad else self.cos_min,
            "cosine_global": nan if bad else cosine(self.sum_dot, self.sum_ref_sq, self.sum_out_sq),
            "sqnr_db": nan if bad else sqnr_db(self.sum_ref_sq, self.sum_err_sq),
            "exact_match": (not bad) and self.sum_err_sq == 0.0,
            "nonfinite_count": self.nonfinite,
        }


def cosine(dot: float, norm_a_sq: float, norm_b_sq: float) -> float:
    """Cosine from sums: dot / sqrt(|a|^2 |b|^2); two zero vectors give 1, one gives 0."""
    if norm_a_sq == 0.0 and norm_b_sq == 0.0:
        return 1.0
    if norm_a_sq == 0.0 or norm_b_sq == 0.0:
        return 0.0
    return float(np.clip(dot / math.sqrt(norm_a_sq * norm_b_sq), -1.0, 1.0))


def per_sample_cosine(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of two [N, D] arrays (zero-vector rules as `cosine`)."""
    dot = np.sum(ref * out, axis=1)
    na = np.sum(ref * ref, axis=1)
    nb = np.sum(out * out, axis=1)
    denom = np.sqrt(na * nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), 0.0)
    cos = np.where((na == 0) & (nb == 0), 1.0, cos)
    return np.clip(cos, -1.0, 1.0)


def sqnr_db(signal_power: float, noise_power: float) -> float | None:
    """10 log10(signal / noise) in dB; None when the noise is zero (identical outputs)."""
    if noise_power == 0.0:
        return None
    if signal_power == 0.0:
        return SQNR_FLOOR_DB
    return max(SQNR_FLOOR_DB, 10.0 * math.log10(signal_power / noise_power))


class ClassificationAccumulator:
    """Top-1/top-5 agreement with the baseline and, when labels are given, accuracy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.samples = 0
        self.top1_agree = 0
        self.top5_agree = 0
        self.labelled = 0
        self.correct1 = 0
        self.correct5 = 0

    def update(
        self, reference: np.ndarray, output: np.ndarray | None, labels: np.ndarray | None
    ) -> None:
        """Add one batch of [N, C] logits. `output=None` scores the reference itself (the
        baseline row: accuracy only)."""
        ref = np.asarray(reference)
        scored = ref if output is None else np.asarray(output)
        top_k = _top_k(scored, 5)
        ref_top1 = np.argmax(ref, axis=1)
        self.samples += ref.shape[0]
        self.top1_agree += int(np.sum(top_k[:, 0] == ref_top1))
        self.top5_agree += int(np.sum(np.any(top_k == ref_top1[:, None], axis=1)))
        if labels is not None:
            lab = _class_labels(labels, ref.shape[0], self.name)
            self.labelled += lab.shape[0]
            self.correct1 += int(np.sum(top_k[:, 0] == lab))
            self.correct5 += int(np.sum(np.any(top_k == lab[:, None], axis=1)))

    def result(self) -> ClassificationMetrics:
        """Percentages 0..100; accuracy fields are None without labels (top1_drop unset)."""
        n = max(self.samples, 1)
        return ClassificationMetrics(
            output=self.name,
            samples=self.samples,
            top1_agreement=100.0 * self.top1_agree / n,
            top5_agreement=100.0 * self.top5_agree / n,
            accuracy=100.0 * self.correct1 / self.labelled if self.labelled else None,
            top5_accuracy=100.0 * self.correct5 / self.labelled if self.labelled else None,
        )


def _top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits per row, best first (ties: lower index first)."""
    k = min(k, logits.shape[1])
    # a stable argsort of the negated logits keeps ties in index order, like argmax
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def _class_labels(labels: np.ndarray, n: int, output: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1 or lab.shape[0] != n:
        raise DataError(
            f"Labels of shape {tuple(lab.shape)} do not fit classification output '{output}' "
            f"({n} samples): expected one integer class id per sample"
        )
    if lab.dtype.kind == "f":
        if not np.all(np.equal(np.mod(lab, 1), 0)):
            raise DataError("Labels must be integer class ids for classification accuracy")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise DataError(f"Labels must be integer class ids, got dtype {lab.dtype}")
    return lab
