"""The Python API: one function per CLI command, importable without optional stages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nnship import api

COMMANDS = (
    "build",
    "export",
    "validate",
    "bench",
    "calibrate",
    "quantize",
    "compile",
    "check",
    "prune",
    "distill",
    "compare",
    "explain",
    "report",
    "demo",
    "tune",
    "run",
    "bundle",
)


def test_one_function_per_cli_command():
    """`api.COMMANDS` maps exactly the CLI's verbs to the module's functions, each documented
    as the command it serves (the CLI side is walked in tests/cli)."""
    assert sorted(api.COMMANDS) == sorted(COMMANDS)
    for name in COMMANDS:
        func = api.COMMANDS[name]  # named like the verb, except `run` -> `run_bundle`
        assert func is getattr(api, func.__name__), name
        assert func.__doc__.startswith(f"`nnship {name}"), name
    for verb, func in api.SUBCOMMANDS.items():  # `nnship bundle verify` -> bundle_verify
        assert func is getattr(api, func.__name__), verb
        assert func.__doc__.startswith(f"`nnship {verb}`"), verb


def test_importing_the_api_loads_no_stage_or_runtime():
    code = (
        "import sys, nnship.api; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'openvino', 'nnship.exporter.export', "
        "'nnship.backends.openvino.backend', 'nnship.backends.openvino.runner') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    """A tiny model exported through `api.export` (real exporter, verified against torch)."""
    import torch

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1))

    torch.manual_seed(0)
    module = Linear().eval()
    path = tmp_path_factory.mktemp("api") / "linear.onnx"
    result = api.export(module, path, inputs=["x:1x1x8x8"])
    return module, result, path


def test_export_writes_a_verified_onnx(small_onnx):
    _, result, path = small_onnx
    assert path.is_file()
    assert result.output_names == ["output"]
    assert result.max_abs_error < 1e-4


def test_compile_validate_report_roundtrip(small_onnx, tmp_path):
    from nnship.backends.torch_runner import TorchRunner
    from nnship.core import TensorSpec
    from nnship.sources import ArrayData

    module, _, path = small_onnx
    artifact = api.compile(path, tmp_path / "ort", backend="onnxruntime")
    assert artifact.label == "onnxruntime/fp32"
    x = np.random.default_rng(0).standard_normal((32, 1, 8, 8)).astype(np.float32)
    data = ArrayData({"x": x})
    from nnship.backends import get_backend
    from nnship.validate import LatencyConfig

    with get_backend("onnxruntime").load(artifact) as runner:
        baseline = TorchRunner(module, [TensorSpec("x", ("batch", 1, 8, 8))])
        report = api.validate(
            baseline, {artifact.label: runner}, data, latency=LatencyConfig(enabled=False)
        )
    assert report.rows[0].outputs[0].max_abs_error < 1e-4
    saved = report.save(tmp_path / "r" / "report.json")
    markdown = api.report(saved).text
    assert "onnxruntime/fp32" in markdown
    assert '"schema_version"' in api.report(saved, format="json").text
    comparison = api.compare(saved, saved)
    assert comparison.checks and comparison.passed  # a report never regresses against itself
    assert comparison.to_dict()["passed"] is True


def test_bench_returns_latency_per_batch_size(small_onnx):
    from nnship.validate import LatencyConfig

    _, _, path = small_onnx
    config = LatencyConfig(
        runs=5, min_runs=1, min_warmup_runs=1, max_warmup_runs=3, batch_sizes=[1, 4]
    )
    result = api.bench(path, latency=config)
    stats = result.latency
    assert [s.batch_size for s in stats] == [1, 4]
    assert all(s.percentile(50) > 0 for s in stats)


def test_report_rejects_unknown_format(tmp_path):
    """An unknown format is refused by name, before the file is even read."""
    from nnship.core.errors import ReportError

    with pytest.raises(ReportError, match="Unknown report format 'pdf'"):
        api.report(tmp_path / "missing.json", format="pdf")


def test_report_of_a_missing_file_names_it(tmp_path):
    from nnship.core.errors import ReportError

    with pytest.raises(ReportError, match="missing.json"):
        api.report(tmp_path / "missing.json")
