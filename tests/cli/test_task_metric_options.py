"""The task-metric argument group: `--metric` text, `--task-gate`, and what `validate`,
`build` and `compare` hand the API."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nnship import api
from nnship.cli import main as cli_main
from nnship.cli.options import TaskMetricArgs
from nnship.cli.options.task_metric import parse_metric_text, parse_task_gate
from nnship.core.errors import DataError, ReportError


@pytest.mark.parametrize(
    ("text", "table"),
    [
        ("detection", {"kind": "detection"}),
        (
            "detection,score_threshold=0.3,output=output0",
            {"kind": "detection", "score_threshold": 0.3, "output": "output0"},
        ),
        ("kind=embedding, pooling=cls", {"kind": "embedding", "pooling": "cls"}),
        (
            'sequence,charset=["-","a","b"],blank=0',
            {"kind": "sequence", "charset": ["-", "a", "b"], "blank": 0},
        ),
        ("callable,function=metrics/fns.py:agree", {"kind": "callable", "function": "metrics/fns.py:agree"}),
        ("signal,argmax_axis=-1,decision_threshold=0.5",
         {"kind": "signal", "argmax_axis": -1, "decision_threshold": 0.5}),
    ],
)  # fmt: skip
def test_inline_metric_text_is_the_table(text, table) -> None:
    assert parse_metric_text(text) == table


def test_a_toml_path_or_an_existing_file_is_a_metric_file(tmp_path) -> None:
    assert parse_metric_text("metric.toml") == Path("metric.toml")
    existing = tmp_path / "metric.cfg"
    existing.write_text('kind = "map"\n')
    assert parse_metric_text(str(existing)) == existing


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("score_threshold=0.3", "name the family first"),
        ("detection,score_threshold", "is not KEY=VALUE"),
        ("detection,output=a,output=b", "repeated key"),
    ],
)
def test_bad_metric_text_names_what_is_wrong(text, says) -> None:
    with pytest.raises(DataError, match=says):
        parse_metric_text(text)


def test_task_gates_read_as_the_recipe_writes_them() -> None:
    assert parse_task_gate("det_f1>=0.95") == ("det_f1", ">= 0.95")
    assert parse_task_gate(" cer <= 2e-2 ") == ("cer", "<= 2e-2")
    for bad in ("det_f1>0.9", "det_f1=0.9", ">=0.9", "det_f1>="):
        with pytest.raises(DataError, match="NAME>=NUMBER"):
            parse_task_gate(bad)


def test_the_group_builds_the_api_arguments_and_build_overrides(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    group = TaskMetricArgs()
    group.add_to(parser)
    args = parser.parse_args(["--metric", "map,threshold=0.3", "--task-gate", "map_iou>=0.9"])
    assert group.metric_spec(args) == {"kind": "map", "threshold": 0.3}
    assert group.task_gates(args) == {"map_iou": ">= 0.9"}
    recipe = tmp_path / "r.toml"
    assert group.base_dir(args, recipe) is None  # --metric given: not the recipe's metric
    plain = parser.parse_args([])
    assert group.metric_spec(plain) is None and group.base_dir(plain, recipe) == tmp_path
    build = argparse.ArgumentParser()
    TaskMetricArgs(metric=False).add_to(build)
    with pytest.raises(SystemExit):
        build.parse_args(["--metric", "map"])  # a build's metric is the recipe's
    given = build.parse_args(["--task-gate", "cer<=0.02"])
    assert TaskMetricArgs(metric=False).overrides(given) == {"validate.gates.task.cer": "<= 0.02"}


class _Called(BaseException):
    pass


def _capture(monkeypatch, name: str) -> dict:
    seen: dict = {}

    def stand_in(*args, **kwargs):
        seen.update(kwargs, args=args)
        raise _Called

    monkeypatch.setattr(api, name, stand_in)
    return seen


def test_validate_hands_the_metric_and_gates_to_the_api(monkeypatch, tmp_path) -> None:
    seen = _capture(monkeypatch, "validate")
    argv = ["validate", "--baseline", "m.onnx", "--candidate", "q.onnx", "--data", "d.npz",
            "--metric", "detection,nms_iou=0.5", "--task-gate", "det_f1>=0.95",
            "--task-gate", "det_recall>=0.9"]  # fmt: skip
    with pytest.raises(_Called):
        cli_main.main(argv)
    assert seen["metric"] == {"kind": "detection", "nms_iou": 0.5}
    assert seen["task_gates"] == {"det_f1": ">= 0.95", "det_recall": ">= 0.9"}
    assert seen["metric_base_dir"] is None


def test_compare_reads_task_thresholds_by_name(monkeypatch) -> None:
    seen = _capture(monkeypatch, "compare")
    argv = ["compare", "a.json", "b.json", "--max-task-drop", "det_f1=0.01",
            "--max-task-drop", "cer=10%", "--allow-metric-mismatch"]  # fmt: skip
    with pytest.raises(_Called):
        cli_main.main(argv)
    thresholds = seen["args"][2]
    assert thresholds.max_task_drop["det_f1"].value == 0.01
    assert thresholds.max_task_drop["cer"].relative
    assert seen["allow_metric_mismatch"] is True
    with pytest.raises(ReportError, match="not a number"):
        from nnship.cli.cmd_compare import _task_thresholds

        _task_thresholds(["det_f1=lots"])
