"""`nnship build` of a recipe with `[validate.metric]` and task gates: an ONNX model quantized
to INT8, judged by a user's metric function named relative to the recipe, the build run from
another folder; `--task-gate` overrides a recipe bound."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.slow

RECIPE = """
name = "taskmetric"
output_dir = "out"

[model]
source = "model.onnx"

[data.calibration]
path = "eval.npz"

[data.evaluation]
path = "eval.npz"

[quantize]
precisions = ["int8"]

[validate.latency]
enabled = false

[validate.metric]
kind = "callable"
function = "metrics/fns.py:agree"        # relative to this recipe
higher_is_better = ["agree", "half"]

[validate.gates]
min_cosine = 0.9
task = { agree = ">= 0.9", half = ">= 0.9" }
"""

FUNCTIONS = """
def agree(reference, candidate, inputs, labels):
    ref, cand = reference["logits"], candidate["logits"]
    return {"agree": float((ref.argmax(1) == cand.argmax(1)).mean()), "half": 0.5}
"""


def _classifier(path: Path) -> None:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["logits"])],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [w, b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


@pytest.fixture
def recipe(tmp_path) -> Path:
    folder = tmp_path / "project"
    (folder / "metrics").mkdir(parents=True)
    (folder / "metrics" / "fns.py").write_text(FUNCTIONS, encoding="utf-8")
    _classifier(folder / "model.onnx")
    x = np.random.default_rng(1).standard_normal((64, 6)).astype(np.float32)
    np.savez(folder / "eval.npz", x=x)
    path = folder / "recipe.toml"
    path.write_text(textwrap.dedent(RECIPE), encoding="utf-8")
    return path


def test_build_judges_every_artifact_by_the_recipes_task_metric(recipe, run_cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("build", recipe, cwd=elsewhere)
    assert proc.returncode == 1, proc.stderr  # "half" is 0.5 < 0.9 everywhere
    report = json.loads((recipe.parent / "out" / "report" / "report.json").read_text())
    assert report["task_metric"]["function"] == "metrics/fns.py:agree"
    rows = {row["label"]: row for row in report["rows"]}
    assert set(rows) == {"onnxruntime/fp32", "onnxruntime/int8"}
    assert rows["onnxruntime/int8"]["task_metrics"]["agree"] >= 0.9
    verdicts = {(v["gate"], v["row"]): v["passed"] for v in report["gates"]}
    assert verdicts["task.agree", "onnxruntime/int8"] is True
    assert verdicts["task.half", "onnxruntime/int8"] is False
    assert verdicts["min_cosine", "onnxruntime/int8"] is True
    markdown = (recipe.parent / "out" / "report" / "report.md").read_text()
    assert "| agree | half |" in markdown
    assert "task.half" in proc.stderr

    # a command-line bound replaces the recipe's for that value; the stages are reused
    proc = run_cli("build", recipe, "--task-gate", "half<=0.5", cwd=elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 6 gate checks passed" in proc.stdout


def test_build_refuses_a_metric_function_that_fails_before_judging(recipe, run_cli, tmp_path):
    (recipe.parent / "metrics" / "fns.py").write_text(
        "def agree(reference, candidate, inputs, labels):\n    raise KeyError('logitz')\n",
        encoding="utf-8",
    )
    proc = run_cli("build", recipe, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "metric function 'metrics/fns.py:agree' raised KeyError" in proc.stderr
    assert not (recipe.parent / "out" / "report" / "report.json").exists()
