"""The task metric through `validate()`, one family per test, on tiny real graphs run by ONNX
Runtime: a baseline and a candidate that differs the way a quantized copy does. Expected values
are computed here from the sessions' own outputs, independently of the scorers."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
from _task_graphs import encoder, linear, score_map, yolo_head
from _validate_helpers import FunctionRunner

from nnship.backends.onnxruntime import OnnxRuntimeRunner
from nnship.metrics.task import MetricError
from nnship.sources import ArrayData
from nnship.validate import ValidateConfig, validate
from nnship.validate.render.markdown import report_markdown


def config(metric: dict, task: dict | None = None, **gates) -> ValidateConfig:
    return ValidateConfig.model_validate(
        {
            "batch_size": 5,  # several batches, the last one short: the scorers accumulate
            "latency": {"enabled": False},
            "metric": metric,
            "gates": {**gates, "task": task or {}},
        }
    )


def ort(path: Path) -> OnnxRuntimeRunner:
    return OnnxRuntimeRunner(path, threads=1)


def outputs(path: Path, inputs: dict) -> np.ndarray:
    runner = ort(path)
    try:
        return next(iter(runner.run(inputs).values())).astype(np.float64)
    finally:
        runner.close()


def gate(report, name: str, row: str):
    return next(v for v in report.gates if v.gate == name and v.row == row)


def test_classification_agreement_and_accuracy_for_baseline_and_candidate(tmp_path) -> None:
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    base = linear(tmp_path / "base.onnx", w, b)
    cand = linear(tmp_path / "cand.onnx", w + 0.4 * rng.standard_normal(w.shape), b)
    x = rng.standard_normal((23, 6)).astype(np.float32)
    labels = outputs(base, {"x": x}).argmax(1)
    labels[:3] = (labels[:3] + 1) % 4  # the baseline is wrong on 3 of 23
    report = validate(
        ort(base), {"int8": ort(cand)}, ArrayData({"x": x}, labels),
        config=config({"kind": "classification"}, {"top1_agreement": ">= 0.5"}),
    )  # fmt: skip
    row = report.row("int8")
    expected = outputs(cand, {"x": x}).argmax(1)
    assert row.task_metrics["top1_agreement"] == pytest.approx(
        np.mean(expected == outputs(base, {"x": x}).argmax(1))
    )
    assert row.task_metrics["accuracy"] == pytest.approx(np.mean(expected == labels))
    # the same numbers as the validator's own classification accumulator (percent there)
    assert row.task_metrics["top1_agreement"] * 100 == pytest.approx(
        row.classification.top1_agreement
    )
    # the baseline row has only what is read against labels
    assert report.baseline.task_metrics == {"accuracy": pytest.approx(20 / 23)}
    assert report.task_metric["kind"] == "classification"
    assert gate(report, "task.top1_agreement", "int8").passed


def test_detection_f1_fails_a_shared_concat_scale_that_cosine_passes(tmp_path) -> None:
    """A YOLO-style head [N, 4+C, A] (boxes in pixels, scores 0..1, one Concat): a shared uint8
    scale on the Concat rounds every score to 0; the raw output's cosine does not notice."""
    base = yolo_head(tmp_path / "base.onnx")
    shared = yolo_head(tmp_path / "shared.onnx", fake_quant="shared")
    per_input = yolo_head(tmp_path / "per_input.onnx", fake_quant="per_input")
    x = np.random.default_rng(1).standard_normal((24, 8)).astype(np.float32)
    report = validate(
        ort(base), {"shared": ort(shared), "per_input": ort(per_input)}, ArrayData({"x": x}),
        config=config({"kind": "detection", "output": "output0"}, {"det_f1": ">= 0.95"},
                      min_cosine=0.99),
    )  # fmt: skip
    broken, fine = report.row("shared"), report.row("per_input")
    assert broken.task_metrics["det_f1"] < 0.2
    assert broken.task_metrics["det_precision"] == 0.0  # it detects nothing at all
    assert gate(report, "min_cosine", "shared").passed  # the proxy stays green...
    assert gate(report, "min_cosine", "shared").value > 0.999
    assert not gate(report, "task.det_f1", "shared").passed  # ...the task metric does not
    assert fine.task_metrics["det_f1"] >= 0.95
    assert gate(report, "task.det_f1", "per_input").passed
    assert not report.passed
    summary = report_markdown(report).split("## Gates")[0]
    header = next(line for line in summary.splitlines() if line.startswith("| artifact"))
    assert header.index("det_f1") < header.index("det_precision") < header.index("cosine")


def test_map_iou_per_sample_and_pooled(tmp_path) -> None:
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((3, 3))
    base = score_map(tmp_path / "base.onnx", kernel)
    cand = score_map(tmp_path / "cand.onnx", kernel + 0.15 * rng.standard_normal((3, 3)))
    x = rng.standard_normal((12, 1, 8, 8)).astype(np.float32)
    report = validate(
        ort(base), {"int8": ort(cand)}, ArrayData({"x": x}),
        config=config({"kind": "map", "activation": "sigmoid", "threshold": 0.5},
                      {"map_iou": ">= 0.5"}),
    )  # fmt: skip
    ref = (1 / (1 + np.exp(-outputs(base, {"x": x}))) > 0.5).reshape(12, -1)
    got = (1 / (1 + np.exp(-outputs(cand, {"x": x}))) > 0.5).reshape(12, -1)
    inter, union = (ref & got).sum(1), (ref | got).sum(1)
    values = report.row("int8").task_metrics
    assert values["map_iou"] == pytest.approx(np.mean(np.where(union, inter / union, 1.0)))
    assert values["pooled_iou"] == pytest.approx(inter.sum() / union.sum())
    assert 0.5 < values["map_iou"] < 1.0
    assert report.passed


def _ctc(logits: np.ndarray, blank: int = 0) -> list[tuple[int, ...]]:
    return [tuple(k for k, _ in groupby(row.argmax(-1)) if k != blank) for row in logits]


def _levenshtein(a, b) -> int:
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        prev, d[0] = d.copy(), i
        for j, y in enumerate(b, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (x != y))
    return int(d[-1])


def test_sequence_ctc_strings_and_cer(tmp_path) -> None:
    rng = np.random.default_rng(3)
    w, b = rng.standard_normal((5, 6)), np.zeros(6)
    base = linear(tmp_path / "base.onnx", w, b, 12)
    cand = linear(tmp_path / "cand.onnx", w + 0.05 * rng.standard_normal(w.shape), b, 12)
    x = rng.standard_normal((16, 12, 5)).astype(np.float32)
    charset = ["-", "a", "b", "c", "d", "e"]
    report = validate(
        ort(base), {"int8": ort(cand)}, ArrayData({"x": x}),
        config=config({"kind": "sequence", "blank": 0, "charset": charset}, {"cer": "<= 1.0"}),
    )  # fmt: skip
    ref, got = _ctc(outputs(base, {"x": x})), _ctc(outputs(cand, {"x": x}))
    values = report.row("int8").task_metrics
    assert values["seq_exact"] == pytest.approx(np.mean([r == g for r, g in zip(ref, got)]))
    edits = sum(_levenshtein(r, g) for r, g in zip(ref, got))
    assert values["cer"] == pytest.approx(edits / sum(len(r) for r in ref))
    assert 0 < values["seq_exact"] < 1  # some strings changed: the examples show them as text
    examples = report.row("int8").extra["task_metric_examples"]
    first = next((r, g) for r, g in zip(ref, got) if r != g)
    assert examples[0]["baseline"] == "".join(charset[i] for i in first[0])
    assert "decodes that differ" in report_markdown(report)
    assert gate(report, "task.cer", "int8").passed


def test_embedding_padding_noise_does_not_count(tmp_path) -> None:
    """`last_hidden_state` of padded inputs: a candidate that differs only at padding positions
    fails a raw-output cosine gate and keeps the mask-mean-pooled embedding exactly."""
    rng = np.random.default_rng(4)
    n, length, dim, hidden = 14, 7, 4, 6
    w = rng.standard_normal((dim, hidden))
    base = encoder(tmp_path / "base.onnx", w)
    noise = 3.0 * rng.standard_normal((length, hidden))
    cand = encoder(tmp_path / "cand.onnx", w, padding_noise=noise)
    lengths = rng.integers(2, length + 1, n)
    mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int64)
    data = ArrayData({"x": rng.standard_normal((n, length, dim)).astype(np.float32),
                      "attention_mask": mask})  # fmt: skip
    report = validate(
        ort(base), {"int8": ort(cand)}, data,
        config=config({"kind": "embedding", "pooling": "mean"},
                      {"emb_cosine": ">= 0.9999", "retrieval_top1": ">= 1.0"}, min_cosine=0.99),
    )  # fmt: skip
    row = report.row("int8")
    assert row.outputs[0].cosine_mean < 0.99  # the raw output counts the padding noise
    assert not gate(report, "min_cosine", "int8").passed
    assert row.task_metrics["emb_cosine"] == pytest.approx(1.0, abs=1e-9)
    assert row.task_metrics["emb_cosine_min"] == pytest.approx(1.0, abs=1e-9)
    assert row.task_metrics["retrieval_top1"] == 1.0
    assert gate(report, "task.emb_cosine", "int8").passed
    # the mask is what keeps the padding out: without pooling the noise counts again
    flat = validate(
        ort(base), {"int8": ort(cand)}, data,
        config=config({"kind": "embedding", "pooling": "none"}),
    )  # fmt: skip
    assert flat.row("int8").task_metrics["emb_cosine"] < 0.99


def test_signal_relative_error_snr_bins_and_decisions(tmp_path) -> None:
    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((4, 16)), np.zeros(16)
    base = linear(tmp_path / "base.onnx", w, b, 10, out="pitch")
    cand = linear(tmp_path / "cand.onnx", w + 0.1 * rng.standard_normal(w.shape), b, 10,
                  out="pitch")  # fmt: skip
    x = rng.standard_normal((11, 10, 4)).astype(np.float32)
    metric = {"kind": "signal", "argmax_axis": -1, "tolerance_bins": 1, "decision_threshold": 0.0}
    report = validate(
        ort(base), {"int8": ort(cand)}, ArrayData({"x": x}),
        config=config(metric, {"bin_agreement": ">= 0.8", "rel_error": "<= 0.5"}),
    )  # fmt: skip
    r, c = outputs(base, {"x": x}), outputs(cand, {"x": x})
    values = report.row("int8").task_metrics
    assert values["rel_error"] == pytest.approx(np.linalg.norm(c - r) / np.linalg.norm(r))
    assert values["snr_db"] == pytest.approx(10 * np.log10((r**2).sum() / ((c - r) ** 2).sum()))
    near = np.abs(r.argmax(-1) - c.argmax(-1)) <= 1
    assert values["bin_agreement"] == pytest.approx(near.mean())
    assert values["decision_agreement"] == pytest.approx(np.mean((r > 0) == (c > 0)))
    assert report.passed


FUNCTIONS = """
import math

def broken(reference, candidate, inputs, labels):
    raise ValueError("boom")

def nan(reference, candidate, inputs, labels):
    return {"agree": math.nan}

def agree(reference, candidate, inputs, labels):
    ref, cand = reference["logits"], candidate["logits"]
    return {"agree": float((ref.argmax(1) == cand.argmax(1)).mean()), "half": 0.5}
"""


class Counting(FunctionRunner):
    """A real ONNX Runtime session that counts its calls."""

    def __init__(self, path: Path) -> None:
        session = ort(path)
        super().__init__(session.run, session.input_specs, session.output_names, "counting")


@pytest.mark.parametrize(
    ("function", "says"),
    [("broken", "raised ValueError: boom"), ("nan", "agree = nan, not a finite number")],
)
def test_a_failing_user_metric_is_a_named_error_before_anything_is_judged(
    tmp_path, function, says
) -> None:
    (tmp_path / "fns.py").write_text(FUNCTIONS, encoding="utf-8")
    rng = np.random.default_rng(6)
    w, b = rng.standard_normal((6, 4)), np.zeros(4)
    candidate = Counting(linear(tmp_path / "cand.onnx", w, b))
    x = rng.standard_normal((8, 6)).astype(np.float32)
    cfg = config({"kind": "callable", "function": f"fns.py:{function}"}).model_copy(
        update={"latency": ValidateConfig().latency}  # latency on: it must not be measured
    )
    with pytest.raises(MetricError) as error:
        validate(ort(linear(tmp_path / "base.onnx", w, b)), {"int8": candidate},
                 ArrayData({"x": x}), config=cfg, metric_base_dir=tmp_path)  # fmt: skip
    assert f"metric function 'fns.py:{function}'" in str(error.value)
    assert says in str(error.value) and "nothing was judged" in str(error.value)
    assert candidate.calls == 0  # not timed, not run


def test_a_user_metric_is_loaded_relative_to_its_base_folder(tmp_path, caplog) -> None:
    (tmp_path / "fns.py").write_text(FUNCTIONS, encoding="utf-8")
    rng = np.random.default_rng(7)
    w, b = rng.standard_normal((6, 4)), np.zeros(4)
    base = linear(tmp_path / "base.onnx", w, b)
    cand = linear(tmp_path / "cand.onnx", w + 0.05 * rng.standard_normal(w.shape), b)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    report = validate(
        ort(base), {"int8": ort(cand)}, ArrayData({"x": x}),
        config=config({"kind": "callable", "function": "fns.py:agree"},
                      {"agree": ">= 0.5", "half": ">= 0.9", "missing": ">= 0"}),
        metric_base_dir=tmp_path,
    )  # fmt: skip
    row = report.row("int8")
    assert set(row.task_metrics) == {"agree", "half"} and row.task_metrics["half"] == 0.5
    assert report.baseline.task_metrics == {}  # a user function's values are all vs baseline
    assert gate(report, "task.agree", "int8").passed
    assert not gate(report, "task.half", "int8").passed
    missing = gate(report, "task.missing", "int8")
    assert not missing.passed and missing.value is None
    assert "gave no 'missing'" in missing.detail
    assert "Task gates on ['missing'] will fail" in caplog.text  # said before anything ran
    assert report.primary_task_metric() == "agree"


def test_a_candidate_with_nan_outputs_gets_no_task_values_and_fails_its_gates(tmp_path) -> None:
    rng = np.random.default_rng(8)
    w, b = rng.standard_normal((6, 4)), np.zeros(4)
    base = ort(linear(tmp_path / "base.onnx", w, b))
    broken = FunctionRunner(lambda batch: {"logits": np.full((len(batch["x"]), 4), np.nan,
                                                            np.float32)},
                            base.input_specs, base.output_names)  # fmt: skip
    report = validate(
        base, {"broken": broken}, ArrayData({"x": rng.standard_normal((6, 6)).astype(np.float32)}),
        config=config({"kind": "classification"}, {"top1_agreement": ">= 0.5"}),
    )  # fmt: skip
    verdict = gate(report, "task.top1_agreement", "broken")
    assert not verdict.passed and report.row("broken").task_metrics == {}
    assert "NaN/Inf" in verdict.detail


def test_a_metric_that_does_not_fit_the_outputs_is_refused_first(tmp_path) -> None:
    rng = np.random.default_rng(9)
    w, b = rng.standard_normal((6, 4)), np.zeros(4)
    path = linear(tmp_path / "m.onnx", w, b)
    candidate = Counting(path)
    with pytest.raises(MetricError, match="no output 'boxes'"):
        validate(ort(path), {"same": candidate},
                 ArrayData({"x": rng.standard_normal((4, 6)).astype(np.float32)}),
                 config=config({"kind": "detection", "output": "boxes"}))  # fmt: skip
    assert candidate.calls == 0
