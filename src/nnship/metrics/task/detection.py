"""Detection: decode raw heads into boxes, keep the confident ones after NMS, and match the
candidate's detections against the float baseline's.

Written by hand (numpy): the decode of a YOLO-style head and greedy NMS are a few lines each,
and no dependency nnship already has (onnxruntime, openvino) exposes them for numpy arrays.
Greedy NMS as in Girshick, "Fast R-CNN" (2015) and torchvision's `batched_nms` (per class);
matching as in the PASCAL VOC protocol (Everingham et al., 2010): detections in descending
score, each matched to the unmatched reference box of its class with the highest IoU >=
`match_iou`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nnship.metrics.task.base import MetricError, Outputs, TaskScorer, safe_ratio
from nnship.metrics.task.config import DetectionMetric

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(boxes [K, 4] as x1, y1, x2, y2; scores [K]; classes [K] ints) of one image."""


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of x1y1x2y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by per-class greedy NMS, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(scores), dtype=bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[pos + 1 :]
        rest = rest[(classes[rest] == classes[i]) & ~suppressed[rest]]
        if len(rest):
            overlaps = box_iou(boxes[i : i + 1], boxes[rest])[0]
            suppressed[rest[overlaps > iou]] = True
    return np.asarray(keep, dtype=np.int64)


def _xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def _yolo_rows(head: np.ndarray, config: DetectionMetric) -> np.ndarray:
    """[N, A, 4(+1)+C] from a head in either layout."""
    if head.ndim != 3:
        raise MetricError(
            f"detection metric: a yolo head is [N, 4+C, A] or [N, A, 4+C], got {head.shape}"
        )
    layout = config.layout
    if layout == "auto":
        layout = "channels_first" if head.shape[1] < head.shape[2] else "anchors_first"
    rows = head.transpose(0, 2, 1) if layout == "channels_first" else head
    need = 6 if config.objectness else 5
    if rows.shape[2] < need:
        raise MetricError(
            f"detection metric: {rows.shape[2]} values per anchor; a yolo head needs at least "
            f"{need} (4 box values{', objectness' if config.objectness else ''}, 1+ class scores)"
        )
    return rows


def _select(boxes: np.ndarray, scores: np.ndarray, config: DetectionMetric) -> Detections:
    """Confident, non-suppressed detections of one image from per-anchor class scores."""
    classes = scores.argmax(1)
    best = scores[np.arange(len(scores)), classes]
    keep = best >= config.score_threshold
    boxes, best, classes = boxes[keep], best[keep], classes[keep]
    kept = nms(boxes, best, classes, config.nms_iou)[: config.max_detections]
    return boxes[kept], best[kept], classes[kept]


def decode_yolo(head: np.ndarray, config: DetectionMetric) -> list[Detections]:
    rows = _yolo_rows(head.astype(np.float64), config)
    out = []
    for image in rows:
        boxes = _xywh_to_xyxy(image[:, :4])
        scores = image[:, 5:] * image[:, 4:5] if config.objectness else image[:, 4:]
        out.append(_select(boxes, scores, config))
    return out


def decode_boxes_scores(
    boxes: np.ndarray, scores: np.ndarray, config: DetectionMetric
) -> list[Detections]:
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3:
        raise MetricError(
            f"detection metric: boxes_scores head needs boxes [N, A, 4] and scores [N, A, C], "
            f"got {boxes.shape} and {scores.shape}"
        )
    if scores.shape[1] != boxes.shape[1] and scores.shape[2] == boxes.shape[1]:
        scores = scores.transpose(0, 2, 1)
    return [
        _select(b.astype(np.float64), s.astype(np.float64), config) for b, s in zip(boxes, scores)
    ]


def match(reference: Detections, candidate: Detections, iou: float) -> int:
    """True positives: candidate detections matched to a distinct reference box of their class."""
    ref_boxes, _, ref_classes = reference
    boxes, scores, classes = candidate
    if not len(ref_boxes) or not len(boxes):
        return 0
    overlaps = box_iou(boxes, ref_boxes)
    overlaps[classes[:, None] != ref_classes[None, :]] = 0.0
    taken = np.zeros(len(ref_boxes), dtype=bool)
    matched = 0
    for i in np.argsort(-scores, kind="stable"):
        row = np.where(taken, 0.0, overlaps[i])
        j = int(row.argmax())
        if row[j] >= iou:
            taken[j] = True
            matched += 1
    return matched


class DetectionScorer(TaskScorer):
    """F1, precision and recall of the candidate's detections against the baseline's."""

    kind = "detection"

    def __init__(self, config: DetectionMetric, decode: Callable[..., Any] | None = None) -> None:
        super().__init__(config.output)
        self.config = config
        self.user_decode = decode
        self.tp = self.n_cand = self.n_ref = 0

    def detections(self, outputs: Outputs) -> list[Detections]:
        c = self.config
        if self.user_decode is not None:
            try:
                found = list(self.user_decode(dict(outputs)))
                return [
                    (
                        np.asarray(b, np.float64).reshape(-1, 4),
                        np.asarray(s, np.float64).reshape(-1),
                        np.asarray(k).reshape(-1).astype(np.int64),
                    )
                    for b, s, k in found
                ]
            except MetricError:
                raise
            except Exception as exc:
                raise MetricError(
                    f"detection metric: decode '{c.decode}' failed: {type(exc).__name__}: {exc}"
                ) from exc
        if c.head == "boxes_scores":
            names = list(outputs)
            boxes = self.pick(outputs, c.boxes or names[0])
            scores = self.pick(outputs, c.scores or (names[1] if len(names) > 1 else None))
            return decode_boxes_scores(boxes, scores, c)
        return decode_yolo(self.pick(outputs), c)

    def update(
        self, reference: Outputs, candidate: Outputs, inputs: Mapping[str, np.ndarray], labels=None
    ) -> None:  # noqa: ANN001
        ref, cand = self.detections(reference), self.detections(candidate)
        if len(ref) != len(cand):
            raise MetricError(
                f"detection metric: {len(ref)} reference images, {len(cand)} candidate images"
            )
        for r, k in zip(ref, cand):
            self.tp += match(r, k, self.config.match_iou)
            self.n_ref += len(r[0])
            self.n_cand += len(k[0])

    def _result(self) -> dict[str, float]:
        # Nothing to count is full agreement only when both sides found nothing: a candidate
        # that detects nothing where the baseline detects objects has precision 0, not 1 (else
        # a det_precision gate would pass a detector whose scores all collapsed).
        precision = safe_ratio(self.tp, self.n_cand, empty=float(self.n_ref == 0))
        recall = safe_ratio(self.tp, self.n_ref, empty=float(self.n_cand == 0))
        f1 = safe_ratio(2 * self.tp, self.n_cand + self.n_ref)
        return {"det_f1": f1, "det_precision": precision, "det_recall": recall}
