"""`nnship validate --metric/--task-gate` and `nnship compare --max-task-drop` through the real
command line, on tiny ONNX graphs."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from _task_graphs import linear, yolo_head

pytestmark = pytest.mark.slow

FUNCTIONS = """
def agree(reference, candidate, inputs, labels):
    ref, cand = reference["logits"], candidate["logits"]
    return {"agree": float((ref.argmax(1) == cand.argmax(1)).mean())}

def broken(reference, candidate, inputs, labels):
    return {"agree": reference["no such output"]}
"""


@pytest.fixture
def detector(tmp_path):
    yolo_head(tmp_path / "base.onnx")
    yolo_head(tmp_path / "shared.onnx", fake_quant="shared")
    yolo_head(tmp_path / "per_input.onnx", fake_quant="per_input")
    x = np.random.default_rng(1).standard_normal((24, 8)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x)
    return tmp_path


@pytest.fixture
def classifier(tmp_path):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    linear(tmp_path / "base.onnx", w, b)
    linear(tmp_path / "cand.onnx", w + 0.05 * rng.standard_normal(w.shape), b)
    np.savez(tmp_path / "data.npz", x=rng.standard_normal((16, 6)).astype(np.float32))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "fns.py").write_text(FUNCTIONS, encoding="utf-8")
    return tmp_path


def validate_args(folder, *candidates, report="report.json"):
    args = ["validate", "--baseline", folder / "base.onnx", "--data", folder / "data.npz"]
    for name in candidates:
        args += ["--candidate", folder / name]
    return [*args, "--no-latency", "--report", folder / report]


def test_detection_gate_fails_the_shared_scale_while_cosine_passes(detector, run_cli):
    proc = run_cli(
        *validate_args(detector, "shared.onnx"),
        "--metric", "detection,output=output0,score_threshold=0.25",
        "--task-gate", "det_f1>=0.95", "--min-cosine", "0.99",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads((detector / "report.json").read_text())
    verdicts = {v["gate"]: v for v in report["gates"]}
    assert verdicts["min_cosine"]["passed"] and not verdicts["task.det_f1"]["passed"]
    assert report["task_metric"]["score_threshold"] == 0.25
    assert "det_f1" in proc.stdout and "task.det_f1" in proc.stdout


def test_compare_gates_a_task_value_by_name(detector, run_cli):
    metric = ["--metric", "detection"]
    stored = run_cli(*validate_args(detector, "per_input.onnx", report="stored.json"), *metric)
    assert stored.returncode == 0, stored.stderr
    # the same label, now the broken candidate: its det_f1 collapses
    (detector / "per_input.onnx").write_bytes((detector / "shared.onnx").read_bytes())
    current = run_cli(*validate_args(detector, "per_input.onnx", report="current.json"), *metric)
    assert current.returncode == 0, current.stderr
    args = ["compare", detector / "stored.json", detector / "current.json"]
    proc = run_cli(*args, "--max-task-drop", "det_f1=0.01")
    assert proc.returncode == 1, proc.stderr
    assert "task det_f1" in proc.stdout and "**FAIL**" in proc.stdout
    assert run_cli(*args).returncode == 0  # shown, not gated
    bad = run_cli(*args, "--max-task-drop", "0.01")
    assert bad.returncode == 2 and "expected NAME=X" in bad.stderr
    unknown = run_cli(*args, "--max-task-drop", "map_iou=0.01")
    assert unknown.returncode == 2 and "neither report has" in unknown.stderr


def test_a_failing_metric_function_exits_2_and_writes_no_report(classifier, run_cli):
    proc = run_cli(
        *validate_args(classifier, "cand.onnx"), "--metric", "callable,function=fns.py:broken",
        cwd=classifier / "metrics",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "metric function 'fns.py:broken' raised KeyError" in proc.stderr
    assert "nothing was judged" in proc.stderr
    assert not (classifier / "report.json").exists()


def test_a_metric_file_resolves_its_function_beside_itself(classifier, run_cli, tmp_path_factory):
    (classifier / "metrics" / "metric.toml").write_text(
        textwrap.dedent(
            """
            [validate.metric]
            kind = "callable"
            function = "fns.py:agree"
            """
        ),
        encoding="utf-8",
    )
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = run_cli(
        *validate_args(classifier, "cand.onnx"),
        "--metric", classifier / "metrics" / "metric.toml", "--task-gate", "agree>=0.9",
        cwd=elsewhere,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((classifier / "report.json").read_text())
    assert report["rows"][0]["task_metrics"]["agree"] >= 0.9


def test_a_recipes_metric_resolves_against_the_recipe(classifier, run_cli, tmp_path_factory):
    (classifier / "metrics" / "recipe.toml").write_text(
        textwrap.dedent(
            """
            [validate.metric]
            kind = "callable"
            function = "fns.py:agree"

            [validate.gates]
            task = { agree = ">= 0.99" }
            """
        ),
        encoding="utf-8",
    )
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    args = validate_args(classifier, "cand.onnx")
    proc = run_cli(*args, "--recipe", classifier / "metrics" / "recipe.toml", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((classifier / "report.json").read_text())
    assert [(v["gate"], v["passed"]) for v in report["gates"]] == [("task.agree", True)]


def test_bad_metric_and_gate_text_exit_2_naming_them(classifier, run_cli):
    args = validate_args(classifier, "cand.onnx")
    typo = run_cli(*args, "--metric", "classification,outptu=logits")
    assert typo.returncode == 2 and "outptu" in typo.stderr
    family = run_cli(*args, "--metric", "segmentation")
    assert family.returncode == 2 and "classification" in family.stderr
    gate = run_cli(*args, "--metric", "classification", "--task-gate", "top1_agreement=0.9")
    assert gate.returncode == 2 and "NAME>=NUMBER" in gate.stderr
    wrong = run_cli(*args, "--metric", "classification", "--task-gate", "det_f1>=0.9")
    assert wrong.returncode == 2 and "does not compute" in wrong.stderr
