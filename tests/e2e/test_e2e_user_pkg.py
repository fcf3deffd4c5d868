"""A user's own package (`examples/my_pkg`) through `nnship export`, `validate`, `bench` and
`build`, as a user would run them from the folder holding the package."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`nnship export my_pkg.models:small_cnn` once for the module: (proc, onnx path)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("user") / "small_cnn.onnx"
    # The installed `nnship` console script, without PYTHONPATH: a user runs it from the
    # folder holding their package, and the package must import from there.
    script = Path(sys.executable).with_name("nnship")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            str(script),
            "export",
            "my_pkg.models:small_cnn",
            "--input",
            "x:1x1x8x8",
            "-o",
            str(out),
        ],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out


def test_export_user_factory(exported):
    proc, out = exported
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["output"]


def test_validate_user_model_against_its_onnx(exported, run_cli, tmp_path, digits_splits):
    _, onnx_path = exported
    _, test = digits_splits
    data = tmp_path / "eval.npz"
    np.savez(data, x=test.inputs["x"][:64], labels=test.labels[:64])
    report = tmp_path / "report.json"
    proc = run_cli(
        "validate",
        "--baseline",
        "my_pkg.models:small_cnn",
        "--input",
        "x:1x1x8x8",
        "--candidate",
        onnx_path,
        "--data",
        data,
        "--report",
        report,
        "--runs",
        "10",
        "--min-cosine",
        "0.999",
        cwd=EXAMPLES,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(report.read_text())
    assert saved["passed"] is True
    assert saved["rows"][0]["classification"]["top1_agreement"] == pytest.approx(100.0)


def test_bench_user_onnx(exported, run_cli, tmp_path):
    _, onnx_path = exported
    out = tmp_path / "bench.json"
    proc = run_cli("bench", onnx_path, "--runs", "20", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert "p50" in proc.stdout


def test_build_user_recipe_finds_the_package_beside_the_recipe(run_cli, tmp_path):
    proc = run_cli(
        "build", EXAMPLES / "my_pkg.toml", "-o", tmp_path / "b", "--set", "validate.latency.runs=10"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "b" / "report" / "report.json").read_text())
    assert report["passed"] is True
    assert report["data"]["num_samples"] == 128
