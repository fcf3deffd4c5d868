"""The task metric families on small arrays with known answers; the validator, quantizer and
tuner tests run them through real graphs."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.metrics.task import MetricError, TaskGate, open_scorer, parse_metric
from nnship.metrics.task.detection import nms
from nnship.metrics.task.sequences import edit_distance


def score(config: dict, ref, cand, inputs=None, labels=None) -> dict[str, float]:
    scorer = open_scorer(parse_metric(config))
    scorer.update({"y": ref}, {"y": cand}, inputs or {}, labels)
    return scorer.result()


def yolo_head(boxes, scores):
    """[1, 4+C, A] (channels first, as an ultralytics export) from cx,cy,w,h boxes and scores."""
    rows = np.concatenate([np.asarray(boxes, float), np.asarray(scores, float)], axis=1)
    empty = np.zeros((10, rows.shape[1]))  # anchors with no object: real heads have thousands
    return np.concatenate([rows, empty]).T[None].astype(np.float32)


def test_classification_agreement_and_accuracy():
    ref = np.array([[2.0, 1, 0], [0, 2, 1], [0, 1, 2], [2, 0, 1]])
    cand = np.array([[2.0, 1, 0], [0, 2, 1], [2, 1, 0], [2, 0, 1]])
    out = score({"kind": "classification"}, ref, cand, labels=np.array([0, 1, 2, 1]))
    assert out["top1_agreement"] == 0.75
    assert out["accuracy"] == 0.5


def test_detection_f1_counts_matched_boxes_of_the_same_class():
    boxes = [[50, 50, 20, 20], [150, 150, 30, 30], [52, 50, 20, 20]]  # 3rd overlaps 1st: NMS
    ref = yolo_head(boxes, [[0.9, 0.0], [0.0, 0.8], [0.5, 0.0]])
    same = score({"kind": "detection"}, ref, ref)
    assert same == {"det_f1": 1.0, "det_precision": 1.0, "det_recall": 1.0}
    # the candidate loses the second box's score (as a shared-scale Concat rounds it to 0)
    lost = yolo_head(boxes, [[0.9, 0.0], [0.0, 0.01], [0.5, 0.0]])
    out = score({"kind": "detection"}, ref, lost)
    assert out["det_precision"] == 1.0 and out["det_recall"] == 0.5
    assert out["det_f1"] == pytest.approx(2 / 3)
    # a class swap is no match
    swapped = yolo_head(boxes, [[0.0, 0.9], [0.0, 0.8], [0.0, 0.5]])
    assert score({"kind": "detection"}, ref, swapped)["det_recall"] == 0.5


def test_detection_that_finds_nothing_has_no_precision_to_boast_of():
    boxes = [[50, 50, 20, 20], [150, 150, 30, 30]]
    ref = yolo_head(boxes, [[0.9, 0.0], [0.0, 0.8]])
    silent = yolo_head(boxes, [[0.0, 0.0], [0.0, 0.0]])  # every score collapsed
    out = score({"kind": "detection"}, ref, silent)
    assert out == {"det_f1": 0.0, "det_precision": 0.0, "det_recall": 0.0}
    # the other way round: the candidate finds boxes where the baseline finds none
    assert score({"kind": "detection"}, silent, ref)["det_recall"] == 0.0
    # both find nothing: full agreement
    assert score({"kind": "detection"}, silent, silent)["det_precision"] == 1.0


def test_a_sequence_metric_takes_one_charset_in_the_recipe_too():
    from nnship.validate.config import ValidateConfig

    table = {"kind": "sequence", "charset": ["a"], "charset_file": "c.txt"}
    with pytest.raises(ValueError, match="charset or charset_file"):
        parse_metric(table)
    with pytest.raises(ValueError, match="charset or charset_file"):
        ValidateConfig.model_validate({"metric": table})


def test_detection_reads_anchor_first_heads_with_objectness():
    rows = np.array([[50, 50, 20, 20, 0.9, 1.0, 0.0], [150, 150, 30, 30, 0.1, 0.0, 1.0]])
    head = rows[None].astype(np.float32)  # [1, A, 5 + C]
    config = {"kind": "detection", "objectness": True, "layout": "anchors_first"}
    assert score(config, head, head)["det_f1"] == 1.0
    scorer = open_scorer(parse_metric(config))
    (found,) = scorer.detections({"y": head})
    assert len(found[0]) == 1  # 0.1 * 1.0 is below the 0.25 threshold


def test_nms_keeps_the_best_box_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10.0]])
    kept = nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.5)
    assert kept.tolist() == [0, 2]


def test_map_iou_per_sample_and_pooled():
    ref = np.zeros((2, 1, 4, 4))
    ref[0, 0, :2, :2] = 1  # 4 pixels
    cand = ref.copy()
    cand[0, 0, 0, 2] = 1  # one extra pixel
    out = score({"kind": "map", "threshold": 0.5}, ref, cand)
    assert out["map_iou"] == pytest.approx((4 / 5 + 1.0) / 2)  # an empty pair counts as 1
    assert out["pooled_iou"] == pytest.approx(4 / 5)


def test_sequence_ctc_decode_and_cer():
    def logits(seq, classes=4):
        x = np.zeros((len(seq), classes))
        x[np.arange(len(seq)), seq] = 1
        return x

    ref = np.stack([logits([1, 1, 0, 2, 0, 2]), logits([3, 0, 3, 3, 0, 0])])  # "122", "33"
    cand = np.stack([logits([1, 0, 2, 2, 0, 0]), logits([3, 0, 3, 3, 0, 0])])  # "12", "33"
    out = score({"kind": "sequence"}, ref, cand)
    assert out["seq_exact"] == 0.5
    assert out["cer"] == pytest.approx(1 / 5)
    time_major = score(
        {"kind": "sequence", "batch_axis": 1}, ref.transpose(1, 0, 2), cand.transpose(1, 0, 2)
    )
    assert time_major == out
    assert edit_distance((1, 2, 3), (1, 3)) == 1


def test_embedding_mean_pooling_ignores_padding():
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((4, 6, 8))
    mask = np.array([[1, 1, 1, 0, 0, 0]] * 4)
    noisy = hidden.copy()
    noisy[:, 3:] += 100.0  # garbage on padding positions only
    out = score({"kind": "embedding"}, hidden, noisy, {"input_ids": mask, "attention_mask": mask})
    assert out["emb_cosine"] == pytest.approx(1.0)
    assert out["retrieval_top1"] == 1.0
    unmasked = score({"kind": "embedding"}, hidden, noisy)
    assert unmasked["emb_cosine"] < 0.99


def test_signal_bins_and_decisions():
    ref = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    cand = np.array([[0.1, 0.2, 0.7], [0.7, 0.2, 0.1]])
    out = score(
        {"kind": "signal", "argmax_axis": 1, "tolerance_bins": 1, "decision_threshold": 0.5},
        ref,
        cand,
    )
    assert out["bin_agreement"] == 1.0  # bin 1 vs 2 is within one bin
    assert out["decision_agreement"] == pytest.approx(4 / 6)
    assert out["rel_error"] > 0


def test_user_function_values_are_averaged_over_batches(tmp_path):
    (tmp_path / "m.py").write_text(
        "def agree(ref, cand, inputs, labels):\n"
        "    return {'same': float((ref['y'] == cand['y']).mean())}\n"
    )
    scorer = open_scorer(parse_metric({"kind": "callable", "function": "m.py:agree"}), tmp_path)
    scorer.update({"y": np.ones(3)}, {"y": np.ones(3)}, {})
    scorer.update({"y": np.ones(1)}, {"y": np.zeros(1)}, {})
    assert scorer.result() == {"same": 0.75}


@pytest.mark.parametrize(
    "body, message",
    [
        ("raise ValueError('boom')", "raised ValueError: boom"),
        ("return {'x': float('nan')}", "x = nan, not a finite number"),
        ("return {'x': 'high'}", "not a finite number"),
        ("return 0.5", "must return a dict"),
    ],
)
def test_a_failing_user_function_is_a_named_error(tmp_path, body, message):
    (tmp_path / "bad.py").write_text(f"def metric(ref, cand, inputs, labels):\n    {body}\n")
    scorer = open_scorer(parse_metric({"kind": "callable", "function": "bad.py:metric"}), tmp_path)
    with pytest.raises(MetricError, match="bad.py:metric") as info:
        scorer.update({"y": np.ones(2)}, {"y": np.ones(2)}, {})
    assert message in str(info.value)


def test_a_missing_function_fails_when_the_scorer_opens(tmp_path):
    with pytest.raises(MetricError, match="does not exist"):
        open_scorer(parse_metric({"kind": "callable", "function": "nope.py:f"}), tmp_path)


def test_task_gates_need_a_direction():
    gate = TaskGate.parse("det_f1", ">= 0.95")
    assert gate.holds(0.95) and not gate.holds(0.9) and not gate.holds(float("nan"))
    assert TaskGate.parse("cer", "<= 2e-2").holds(0.01)
    with pytest.raises(ValueError, match="write the direction"):
        TaskGate.parse("det_f1", 0.95)
    with pytest.raises(ValueError, match="expected"):
        TaskGate.parse("det_f1", "> 0.95")
