"""The built-in task metric families that need no decoding beyond an argmax or a threshold:
classification, dense maps, embeddings and signals (detection and sequences have modules of
their own). Every one accumulates sums batch by batch; only retrieval keeps the pooled
embeddings (N x D), because nearest neighbours need the whole evaluation set."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nnship.metrics.drift import sqnr_db
from nnship.metrics.task.base import MetricError, Outputs, TaskScorer, safe_ratio
from nnship.metrics.task.config import (
    ClassificationMetric,
    EmbeddingMetric,
    MapMetric,
    SignalMetric,
)


class ClassificationScorer(TaskScorer):
    """Top-1 / top-5 agreement with the baseline's top-1 class; accuracy against 1-D integer
    labels when given (fractions 0..1)."""

    kind = "classification"

    def __init__(self, config: ClassificationMetric) -> None:
        super().__init__(config.output)
        self.n = self.top1 = self.top5 = self.correct = self.labelled = 0

    def update(self, reference: Outputs, candidate: Outputs, inputs, labels=None) -> None:  # noqa: ANN001
        ref, cand = self.pick(reference), self.pick(candidate)
        if ref.ndim != 2:
            raise MetricError(
                f"classification metric: output shape {ref.shape} is not [N, classes]"
            )
        ref_top = ref.argmax(1)
        k = min(5, cand.shape[1])
        cand_topk = np.argsort(-cand, axis=1)[:, :k]
        self.n += len(ref)
        self.top1 += int((cand_topk[:, 0] == ref_top).sum())
        self.top5 += int((cand_topk == ref_top[:, None]).any(1).sum())
        if labels is not None and np.asarray(labels).ndim == 1:
            self.labelled += len(ref)
            self.correct += int((cand_topk[:, 0] == np.asarray(labels)).sum())

    def _result(self) -> dict[str, float]:
        out = {
            "top1_agreement": safe_ratio(self.top1, self.n),
            "top5_agreement": safe_ratio(self.top5, self.n),
        }
        if self.labelled:
            out["accuracy"] = safe_ratio(self.correct, self.labelled)
        return out


class MapScorer(TaskScorer):
    """IoU of the masks `activation(map) > threshold`, per sample (mean) and pooled."""

    kind = "map"

    def __init__(self, config: MapMetric) -> None:
        super().__init__(config.output)
        self.config = config
        self.iou_sum = 0.0
        self.n = 0
        self.inter = self.union = 0

    def _mask(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        if self.config.activation == "sigmoid":
            x = 1.0 / (1.0 + np.exp(-x))
        return (x > self.config.threshold).reshape(len(x), -1)

    def update(self, reference: Outputs, candidate: Outputs, inputs, labels=None) -> None:  # noqa: ANN001
        r, c = self._mask(self.pick(reference)), self._mask(self.pick(candidate))
        inter = (r & c).sum(1)
        union = (r | c).sum(1)
        self.iou_sum += float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).sum())
        self.n += len(r)
        self.inter += int(inter.sum())
        self.union += int(union.sum())

    def _result(self) -> dict[str, float]:
        return {
            "map_iou": safe_ratio(self.iou_sum, self.n),
            "pooled_iou": safe_ratio(self.inter, self.union),
        }


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two zero rows count as 1, one zero row as 0 (as `metrics.drift`)."""
    dot = (a * b).sum(1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = dot / np.maximum(na * nb, np.finfo(np.float64).tiny)
    return np.where(both_zero, 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))


class EmbeddingScorer(TaskScorer):
    """Cosine of pooled embeddings and nearest-neighbour retrieval agreement."""

    kind = "embedding"

    def __init__(self, config: EmbeddingMetric) -> None:
        super().__init__(config.output)
        self.config = config
        self.ref: list[np.ndarray] = []
        self.cand: list[np.ndarray] = []

    def _mask(self, inputs: Mapping[str, np.ndarray], hidden: np.ndarray) -> np.ndarray | None:
        name = self.config.mask_input
        if name is None:
            name = next((n for n in inputs if "mask" in n.lower()), None)
        elif name not in inputs:
            raise MetricError(
                f"embedding metric: mask_input '{name}' is not an input "
                f"(inputs: {', '.join(inputs)})"
            )
        if name is None:
            return None
        mask = np.asarray(inputs[name])
        if mask.shape != hidden.shape[:2]:
            raise MetricError(
                f"embedding metric: mask '{name}' has shape {mask.shape}, the output's first two "
                f"axes are {hidden.shape[:2]}"
            )
        return mask.astype(np.float64)

    def pool(self, hidden: np.ndarray, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        x = hidden.astype(np.float64)
        pooling = self.config.pooling
        if pooling == "none" or x.ndim == 2:
            return x.reshape(len(x), -1)
        if x.ndim != 3:
            raise MetricError(
                f"embedding metric: pooling '{pooling}' needs [N, positions, dim], got {x.shape}"
            )
        if pooling == "cls":
            return x[:, 0]
        mask = self._mask(inputs, x)
        if pooling == "max":
            if mask is not None:
                x = np.where(mask[..., None] > 0, x, -np.inf)
            return x.max(1)
        if mask is None:
            return x.mean(1)
        # Mean over real tokens only (sentence-transformers' mean pooling): padding positions
        # change nothing a user ships, so they must not weigh in the score either.
        return (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)

    def update(self, reference: Outputs, candidate: Outputs, inputs, labels=None) -> None:  # noqa: ANN001
        self.ref.append(self.pool(self.pick(reference), inputs))
        self.cand.append(self.pool(self.pick(candidate), inputs))

    def _result(self) -> dict[str, float]:
        if not self.ref:
            raise MetricError("embedding metric: no samples were scored")
        ref, cand = np.concatenate(self.ref), np.concatenate(self.cand)
        cos = _cosine_rows(ref, cand)
        out = {"emb_cosine": float(cos.mean()), "emb_cosine_min": float(cos.min())}
        if len(ref) >= 3:
            out["retrieval_top1"] = float((_nearest(ref) == _nearest(cand)).mean())
        return out


def _nearest(x: np.ndarray) -> np.ndarray:
    """Index of each row's nearest other row by cosine."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return sim.argmax(1)


class SignalScorer(TaskScorer):
    """Relative error and SNR over every element; argmax-bin and threshold agreement."""

    kind = "signal"

    def __init__(self, config: SignalMetric) -> None:
        super().__init__(config.output)
        self.config = config
        self.signal = self.noise = 0.0
        self.bins = self.bins_ok = 0
        self.decisions = self.decisions_ok = 0

    def update(self, reference: Outputs, candidate: Outputs, inputs, labels=None) -> None:  # noqa: ANN001
        r = self.pick(reference).astype(np.float64)
        c = self.pick(candidate).astype(np.float64)
        if r.shape != c.shape:
            raise MetricError(f"signal metric: shapes differ, {r.shape} vs {c.shape}")
        self.signal += float((r**2).sum())
        self.noise += float(((c - r) ** 2).sum())
        axis = self.config.argmax_axis
        if axis is not None:
            if not -r.ndim <= axis < r.ndim:
                raise MetricError(f"signal metric: argmax_axis {axis} is outside shape {r.shape}")
            diff = np.abs(r.argmax(axis) - c.argmax(axis))
            self.bins += diff.size
            self.bins_ok += int((diff <= self.config.tolerance_bins).sum())
        t = self.config.decision_threshold
        if t is not None:
            self.decisions += r.size
            self.decisions_ok += int(((r > t) == (c > t)).sum())

    def _result(self) -> dict[str, float]:
        rel = (self.noise / self.signal) ** 0.5 if self.signal else (0.0 if not self.noise else 1e9)
        snr = sqnr_db(self.signal, self.noise)
        out = {"rel_error": float(rel), "snr_db": float(200.0 if snr is None else min(snr, 200.0))}
        if self.config.argmax_axis is not None:
            out["bin_agreement"] = safe_ratio(self.bins_ok, self.bins)
        if self.config.decision_threshold is not None:
            out["decision_agreement"] = safe_ratio(self.decisions_ok, self.decisions)
        return out
