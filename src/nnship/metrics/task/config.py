"""`[validate.metric]`: the task metric a model is judged by (pydantic, `extra="forbid"`).

One table names a family (`kind`) and its few settings; every family scores a candidate's
outputs against the float baseline's on the same inputs (and against labels where the family
can read them). Every value is a plain float; the names each family reports are listed in
`METRIC_NAMES`, with whether higher is better (`HIGHER_IS_BETTER`).

```toml
[validate.metric]                 # a YOLO-style detector
kind = "detection"
output = "output0"                # default: the model's first output
score_threshold = 0.25
nms_iou = 0.45

[validate.gates]
task = { det_f1 = ">= 0.95" }
```
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Metric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str | None = None
    """The model output the metric reads (default: the first output)."""


class ClassificationMetric(_Metric):
    """Logits or probabilities `[N, C]`: top-1/top-5 agreement with the baseline, accuracy
    against integer labels when the data has them."""

    kind: Literal["classification"] = "classification"


class DetectionMetric(_Metric):
    """Detections decoded from raw heads, matched against the baseline's detections.

    Heads (`head`): "yolo" (one output `[N, 4+C, A]` or `[N, A, 4+C]`, boxes as centre x, y,
    width, height; `objectness = true` for `[N, A, 5+C]` heads whose 5th channel multiplies
    the class scores), or "boxes_scores" (two outputs: `boxes` `[N, A, 4]` as x1, y1, x2, y2
    and `scores` `[N, A, C]` or `[N, C, A]`), or `decode = "pkg.mod:fn"` (returns, per sample,
    `(boxes [K, 4] x1y1x2y2, scores [K], classes [K])` from the batch's outputs dict).
    Detections: score >= `score_threshold`, per-class greedy NMS at `nms_iou`, at most
    `max_detections` per image. A candidate box matches a baseline box of the same class with
    IoU >= `match_iou`; `det_f1`, `det_precision`, `det_recall` count matches over all images.
    """

    kind: Literal["detection"] = "detection"
    head: Literal["yolo", "boxes_scores"] = "yolo"
    layout: Literal["auto", "channels_first", "anchors_first"] = "auto"
    """"channels_first" is `[N, 4+C, A]`; "auto" takes the smaller of the two axes as channels."""
    objectness: bool = False
    boxes: str | None = None
    """"boxes_scores" head: the boxes output (default: the first output)."""
    scores: str | None = None
    """"boxes_scores" head: the scores output (default: the second output)."""
    decode: str | None = None
    score_threshold: float = Field(default=0.25, ge=0)
    nms_iou: float = Field(default=0.45, gt=0, le=1)
    match_iou: float = Field(default=0.5, gt=0, le=1)
    max_detections: int = Field(default=300, ge=1)


class MapMetric(_Metric):
    """Dense maps (segmentation, text or score maps): pixels above `threshold` (after
    `activation`) form the mask. `map_iou` is the mean per-sample IoU (two empty masks: 1),
    `pooled_iou` the IoU over all pixels of all samples."""

    kind: Literal["map"] = "map"
    threshold: float = 0.5
    activation: Literal["none", "sigmoid"] = "none"


class SequenceMetric(_Metric):
    """CTC logits decoded greedily (argmax per step, repeats collapsed, `blank` dropped).
    `seq_exact` is the fraction of samples whose decoded sequence equals the baseline's, `cer`
    the character error rate (edit distance / baseline length, summed over samples).

    `class_axis` (default -1) holds the classes, `time_axis` the steps (default: the axis that
    is neither the class nor the batch axis); `batch_axis` is 0 unless the model is
    time-major (`batch_axis = 1` for `[T, N, C]`). `charset` (a list) or `charset_file` (one
    symbol per line) turns indices into strings for the report's examples; metrics compare the
    index sequences either way."""

    kind: Literal["sequence"] = "sequence"
    blank: int = 0
    class_axis: int = -1
    time_axis: int | None = None
    batch_axis: int = Field(default=0, ge=0)
    charset: list[str] | None = None
    charset_file: str | None = None

    @model_validator(mode="after")
    def _one_charset(self) -> SequenceMetric:
        if self.charset and self.charset_file:
            raise ValueError("give charset or charset_file, not both")
        return self


class EmbeddingMetric(_Metric):
    """Embeddings, pooled: `pooling` "mean" (over positions where the attention mask is 1;
    every position without a mask), "cls" (position 0), "max", or "none" (the output is the
    embedding; flattened). `mask_input` names the mask input (default: the input whose name
    holds "mask", if any). `emb_cosine` is the mean per-sample cosine of the pooled vectors,
    `emb_cosine_min` the worst; `retrieval_top1` the fraction of samples whose nearest
    neighbour (cosine, itself excluded) among the evaluation set is the same for the baseline
    and the candidate."""

    kind: Literal["embedding"] = "embedding"
    pooling: Literal["mean", "cls", "max", "none"] = "mean"
    mask_input: str | None = None


class SignalMetric(_Metric):
    """Continuous outputs (audio, pitch, voice activity). `rel_error` = ||c - r|| / ||r|| and
    `snr_db` over every element; with `argmax_axis`, `bin_agreement` is the fraction of
    argmax positions (pitch bins) within `tolerance_bins` of the baseline's; with
    `decision_threshold`, `decision_agreement` is the fraction of elements on the same side of
    it (voice activity)."""

    kind: Literal["signal"] = "signal"
    argmax_axis: int | None = None
    tolerance_bins: int = Field(default=0, ge=0)
    decision_threshold: float | None = None


class CallableMetric(_Metric):
    """A user function `function = "pkg.mod:fn"` (or `"path/file.py:fn"`, relative to the
    recipe), loaded like a model factory and called once per batch as
    `fn(reference, candidate, inputs, labels) -> {name: float}` (the outputs and inputs are
    dicts of numpy arrays, first axis the batch; labels None or an array). The values are
    averaged over batches weighted by batch size. `higher_is_better` lists the names where
    larger is better (default: all), so decisions know which way to go. A function that
    raises or returns a non-number or NaN is an error naming it (exit 2), never a pass."""

    kind: Literal["callable"] = "callable"
    function: str
    higher_is_better: list[str] | None = None


TaskMetricConfig = Annotated[
    ClassificationMetric
    | DetectionMetric
    | MapMetric
    | SequenceMetric
    | EmbeddingMetric
    | SignalMetric
    | CallableMetric,
    Field(discriminator="kind"),
]
"""The `[validate.metric]` table: one of the families, chosen by `kind`."""

METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("top1_agreement", "top5_agreement", "accuracy"),
    "detection": ("det_f1", "det_precision", "det_recall"),
    "map": ("map_iou", "pooled_iou"),
    "sequence": ("seq_exact", "cer"),
    "embedding": ("emb_cosine", "emb_cosine_min", "retrieval_top1"),
    "signal": ("rel_error", "snr_db", "bin_agreement", "decision_agreement"),
}
"""The values each built-in family reports (a family leaves out what its data cannot give:
accuracy without labels, bin agreement without `argmax_axis`)."""

LABEL_METRICS: dict[str, tuple[str, ...]] = {"classification": ("accuracy",)}
"""The values a family computes against the data's labels rather than the baseline: the only
ones the baseline's own row can have."""

PRIMARY: dict[str, str] = {
    "classification": "top1_agreement",
    "detection": "det_f1",
    "map": "map_iou",
    "sequence": "seq_exact",
    "embedding": "emb_cosine",
    "signal": "rel_error",
}
"""The value automatic decisions rank by when the recipe gates on none of the family's."""

LOWER_IS_BETTER = frozenset({"cer", "rel_error"})
"""Built-in names where smaller is better; every other built-in name is better when larger."""


_BOUND = re.compile(r"^\s*(>=|<=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class TaskGate(BaseModel):
    """One `[validate.gates] task` entry: `name = ">= 0.95"` or `name = "<= 0.02"`."""

    model_config = ConfigDict(frozen=True)

    metric: str
    op: Literal[">=", "<="]
    threshold: float

    @classmethod
    def parse(cls, metric: str, text: str | float) -> TaskGate:
        if isinstance(text, int | float) and not isinstance(text, bool):
            raise ValueError(
                f'task gate \'{metric}\': write the direction, e.g. ">= {text}" or "<= {text}"'
            )
        match = _BOUND.match(str(text))
        if not match:
            raise ValueError(
                f"task gate '{metric}' = '{text}': expected \">= NUMBER\" or \"<= NUMBER\""
            )
        return cls(metric=metric, op=match.group(1), threshold=float(match.group(2)))  # type: ignore[arg-type]

    def holds(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def text(self) -> str:
        return f"{self.op} {self.threshold:g}"


def parse_task_gates(gates: dict[str, str]) -> list[TaskGate]:
    """`{"det_f1": ">= 0.95"}` -> `[TaskGate]`; `ValueError` naming the bad entry."""
    return [TaskGate.parse(name, text) for name, text in gates.items()]


def primary_metric(config: BaseModel, names: list[str] | tuple[str, ...] = ()) -> str | None:
    """The value shown first and plotted: the family's `PRIMARY`, for a user callable the first
    name it returned (`names`, in the order it returned them); None when there is none."""
    kind = getattr(config, "kind", None)
    if kind in PRIMARY:
        return PRIMARY[kind]
    return names[0] if names else None


def higher_is_better(name: str, config: BaseModel | None = None) -> bool:
    """Whether a larger value of metric `name` is better (a user callable declares its own)."""
    if isinstance(config, CallableMetric) and config.higher_is_better is not None:
        return name in config.higher_is_better
    return name not in LOWER_IS_BETTER


class _CheckedMetric(BaseModel):
    """The discriminated union as a field, so pydantic picks the family by `kind` (the
    cross-field checks live on the families themselves: the recipe runs them too)."""

    model_config = ConfigDict(extra="forbid")
    metric: TaskMetricConfig


def parse_metric(data: dict) -> TaskMetricConfig:
    """A `[validate.metric]` table (or the CLI's `--metric kind,key=value,...`) as a config;
    pydantic's `ValidationError` names the bad key."""
    return _CheckedMetric.model_validate({"metric": data}).metric
