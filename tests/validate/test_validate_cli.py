"""The real CLI in a subprocess: exit codes of validate, compare and bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

pytestmark = pytest.mark.slow

MODEL_PY = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(x)


def make():
    torch.manual_seed(0)
    return Net()
"""


def nnship(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnship.cli.main", "-q", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _gemm_onnx(path: Path, w: np.ndarray, b: np.ndarray) -> None:
    model = onnx.parser.parse_model(
        """<ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 6] x) => (float[N, 4] output) {
            output = Gemm <transB: int = 1> (x, W, B)
        }"""
    )
    model.graph.initializer.extend(
        [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "B")]
    )
    onnx.save(model, path)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    pytest.importorskip("nnship.sources.data")
    pytest.importorskip("nnship.backends.torch_runner")
    pytest.importorskip("nnship.backends.onnxruntime")
    import torch

    root = tmp_path_factory.mktemp("cli")
    (root / "model.py").write_text(MODEL_PY)
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 4)
    w = linear.weight.detach().numpy()
    b = linear.bias.detach().numpy()
    _gemm_onnx(root / "same.onnx", w, b)
    noise = np.random.default_rng(1).standard_normal(w.shape).astype(np.float32)
    _gemm_onnx(root / "noisy.onnx", w + 0.3 * noise, b)
    x = np.random.default_rng(2).standard_normal((24, 6)).astype(np.float32)
    labels = np.argmax(x @ w.T + b, axis=1)
    np.savez(root / "eval.npz", x=x, labels=labels)
    return root


FAST = ("--runs", "5", "--warmup", "2", "--threads", "1")


def in_process(*args: str, cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    """The same CLI entry point in this process (for cheap usage-error checks)."""
    from nnship.cli.main import main

    monkeypatch.chdir(cwd)
    code = main(["-q", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def validated(work: Path) -> Path:
    """One passing `nnship validate` run: report in out/, saved outputs in out/saved/."""
    ok = nnship("validate", "--baseline", "model.py:make", "--candidate", "same.onnx",
                "--data", "eval.npz", "--report", "out/report.json", "--min-cosine", "0.9999",
                "--max-top1-drop", "0", "--save-outputs", "out/saved", *FAST, cwd=work)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "onnxruntime/fp32" in ok.stdout  # the table shows whole labels when piped
    return work / "out"


def test_validate_passes_and_writes_report(validated: Path) -> None:
    report = json.loads((validated / "report.json").read_text())
    assert report["passed"] and report["rows"][0]["label"] == "onnxruntime/fp32"
    assert report["baseline"]["label"] == "torch/fp32"
    assert report["rows"][0]["classification"]["accuracy"] == 100.0
    assert report["rows"][0]["cold_start_ms"] > 0
    assert (validated / "report.md").is_file() and (validated / "saved/torch_fp32.npz").is_file()


def test_compare_exit_codes_and_step_summary(work: Path, validated: Path) -> None:
    summary = work / "summary.md"
    same = nnship("compare", "out/report.json", "out/report.json", "--max-top1-drop", "0.3",
                  "--max-latency-regression", "10%", "--markdown", "out/cmp.md", cwd=work,
                  env={"GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert "nnship compare" in summary.read_text() and (work / "out/cmp.md").is_file()

    worse = json.loads((validated / "report.json").read_text())
    worse["rows"][0]["classification"]["accuracy"] = 99.0
    (validated / "worse.json").write_text(json.dumps(worse))
    failed = nnship("compare", "out/report.json", "out/worse.json", "--max-top1-drop", "0.3",
                    cwd=work)  # fmt: skip
    assert failed.returncode == 1 and "FAIL" in failed.stdout

    worse["schema_version"] = 99
    (validated / "future.json").write_text(json.dumps(worse))
    future = nnship("compare", "out/report.json", "out/future.json", cwd=work)
    assert future.returncode == 2 and "schema_version 99" in future.stderr


def test_gate_failure_exits_1_with_a_replayed_baseline(work: Path, validated: Path) -> None:
    failed = nnship("validate", "--baseline-outputs", "out/saved/torch_fp32.npz", "--candidate",
                    "noisy.onnx", "--data", "eval.npz", "--min-cosine", "0.99999",
                    "--no-latency", "--report", "gate/report.json", cwd=work)  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert "gate failed" in failed.stdout
    report = json.loads((work / "gate/report.json").read_text())
    assert report["baseline"]["source"].startswith("saved:")
    assert [g["passed"] for g in report["gates"]] == [False]


def test_usage_errors_exit_2(work: Path, capsys, monkeypatch) -> None:
    code, err = in_process("validate", "--baseline", "model.py:make", "--candidate", "same.onnx",
                           "--data", "nope.npz", "--no-latency", cwd=work, capsys=capsys,
                           monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and "nope.npz" in err
    code, err = in_process("validate", "--candidate", "same.onnx", "--data", "eval.npz",
                           cwd=work, capsys=capsys, monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and "--baseline" in err
    with pytest.raises(SystemExit) as exc:
        in_process("compare", "a.json", "b.json", "--bogus", "1", cwd=work, capsys=capsys,
                   monkeypatch=monkeypatch)  # fmt: skip
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    code, err = in_process("bench", "same.onnx", "--runs", "2", "--no-such-option", "3",
                           cwd=work, capsys=capsys, monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and "no_such_option" in err


def test_bench_passes_backend_options_through(work: Path) -> None:
    out = nnship("bench", "same.onnx", "--batch", "1", "--batch", "4", *FAST, "--json",
                 "bench.json", "--graph-optimization", "basic", cwd=work)  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads((work / "bench.json").read_text())
    assert [s["batch_size"] for s in result["latency"]] == [1, 4]
    assert result["options"] == {"graph_optimization": "basic", "threads": 1}
    assert "p50" in out.stdout
