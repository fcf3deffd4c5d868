"""`method = "auto"`: choose the activation range method per model by measured fidelity.

Every candidate method reads its ranges from the one calibration table, so no statistics are
collected again. Each distinct set of ranges is written as a QDQ model and run with ONNX
Runtime over at most `auto_samples` samples. The candidate whose outputs are closest to the
float model's wins. Candidates whose ranges equal an earlier candidate's reuse its score.
Labels are not needed, because fidelity to the float model is what quantization can lose:
- 2-D logits: top-1 agreement, then mean per-sample cosine on ties;
- other outputs: mean per-sample cosine, then SQNR (dB).
On equal scores the earlier candidate wins, so the choice is deterministic.

The comparison data is the evaluation data when given. Otherwise it is calibration samples the
statistics did not see: the samples after the ones used, or, when the statistics would use them
all, the last quarter (at most `auto_samples`), held out from statistics collection.

Written by hand: ONNX Runtime's `quantize_static` and NNCF take one calibration method up
front, and neither compares range methods by the quantized model's outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import onnx

from nnship.backends.onnxruntime.outputs import Outputs, run_model
from nnship.core import DataSource
from nnship.core.data import SampleWindow
from nnship.quantize.evaluate import compare
from nnship.quantize.placement import Placement

log = logging.getLogger(__name__)

Build = Callable[[dict[str, str]], tuple[onnx.ModelProto, Placement]]
"""`build(force_float) -> (qdq_model, placement)`, as the pipeline's builders."""


class Candidate(NamedTuple):
    """What the pipeline makes for one method: the builder, the ranges, and tensor -> method
    really applied where that is not the candidate (see `tables.table_ranges`)."""

    build: Build
    ranges: dict[str, tuple[float, float]]
    applied: dict[str, str]


@dataclass
class SelectionData:
    """Where "auto" compares the candidates: `data` (its first `reference` rows) and the float
    model's outputs there; `held_out` is False when the statistics saw these samples too."""

    data: DataSource
    reference: Outputs
    description: str
    held_out: bool


def prepare_selection(
    model: onnx.ModelProto,
    *,
    samples: int,
    eval_data: DataSource | None,
    eval_reference: Outputs | None,
    calib_data: DataSource | None,
    stats_samples: int | None,
    table_given: bool,
    min_stats_samples: int = 32,
) -> tuple[SelectionData | None, DataSource | None]:
    """The comparison data of "auto", and the calibration data statistics should then use.

    `stats_samples` is how many calibration samples the statistics use (a given table's
    `num_samples`, else `max_samples`; None = all). Samples are held out of the statistics
    only if at least `min_stats_samples` (default 32) remain for them. Returns
    (None, calib_data) when there is no data to compare on.
    """
    if eval_data is not None and eval_reference is not None:
        k = min(samples, len(eval_reference.primary))
        labels = None if eval_reference.labels is None else eval_reference.labels[:k]
        ref = Outputs({n: a[:k] for n, a in eval_reference.arrays.items()}, labels)
        what = f"evaluation data {eval_data.describe()}, first {k} samples"
        return SelectionData(eval_data, ref, what, held_out=True), calib_data
    if calib_data is None:
        return None, None
    total = calib_data.num_samples
    used = total if stats_samples is None else min(stats_samples, total)
    stats_data: DataSource = calib_data
    keep = total - min(samples, total // 4)
    if used < total:
        window = SampleWindow(calib_data, used, min(total, used + samples))
        held_out = True
    elif not table_given and keep >= min_stats_samples:
        stats_data = SampleWindow(calib_data, 0, keep)
        window = SampleWindow(calib_data, keep, total)
        held_out = True
    else:
        window = SampleWindow(calib_data, 0, min(samples, total))
        held_out = False
    what = f"calibration data {window.describe()}" + ("" if held_out else " (not held out)")
    reference = run_model(model, window)
    return SelectionData(window, reference, what, held_out), stats_data


def fidelity_score(metrics: dict[str, float]) -> tuple[float, float]:
    """Higher is better: (top-1 agreement, cosine) for 2-D logits, else (cosine, SQNR dB)."""
    if "top1_agreement" in metrics:
        return (metrics["top1_agreement"], metrics["cosine"])
    return (metrics["cosine"], metrics.get("sqnr_db", 0.0))


@dataclass
class Selection:
    """The chosen method, its builder/ranges/labels and its already-built model, plus the
    record for the result (`record["candidates"]`: one entry per candidate)."""

    method: str
    candidate: Candidate
    built: tuple[onnx.ModelProto, Placement]
    record: dict[str, Any] = field(default_factory=dict)


def select_method(
    methods: list[str], make: Callable[[str], Candidate], where: SelectionData
) -> Selection:
    """Quantize with each of `methods` (`make(method)` gives its builder and ranges), score
    each on `where` with `fidelity_score`, and return the best (the first on ties)."""
    start = time.perf_counter()
    samples = len(where.reference.primary)
    entries: list[dict[str, Any]] = []
    seen: dict[tuple, tuple[dict[str, Any], set[str]]] = {}
    best: Selection | None = None
    best_score: tuple[float, float] | None = None
    for method in methods:
        candidate = make(method)
        _, ranges, applied = candidate
        key = tuple(sorted(ranges.items()))
        if key in seen:
            twin, planned = seen[key]
            entry = {**twin, "method": method, "same_ranges_as": twin["method"]}
            entry["not_applied_tensors"] = sum(1 for t in applied if t in planned)
            entries.append(entry)
            log.info("auto: %s gives the same ranges as %s", method, twin["method"])
            continue
        qmodel, plan = candidate.build({})
        metrics = compare(where.reference, run_model(qmodel, where.data, max_samples=samples))
        score = fidelity_score(metrics)
        planned = set(plan.tensors)
        entry = {
            "method": method,
            **{k: v for k, v in metrics.items() if k != "samples"},
            "score": list(score),
            "not_applied_tensors": sum(1 for t in applied if t in planned),
        }
        entries.append(entry)
        seen[key] = (entry, planned)
        log.info("auto: %s scores %s on %d samples", method, _fmt(score), samples)
        if best_score is None or score > best_score:
            best_score = score
            best = Selection(method, candidate, (qmodel, plan))
    assert best is not None and best_score is not None
    best.record = {
        "mode": "auto",
        "chosen": best.method,
        "criterion": "top-1 agreement with the float model, then mean cosine (2-D logits); "
        "mean cosine, then SQNR dB (other outputs)",
        "data": where.description,
        "held_out": where.held_out,
        "samples": samples,
        "candidates": entries,
        "seconds": round(time.perf_counter() - start, 3),
    }
    log.info(
        "auto: chose %s (%s) among %s in %.1f s",
        best.method,
        _fmt(best_score),
        ", ".join(methods),
        best.record["seconds"],
    )
    return best


def _fmt(score: tuple[float, float]) -> str:
    return f"{score[0]:.4f} / {score[1]:.6f}"
