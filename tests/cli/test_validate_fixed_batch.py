"""`nnship validate` on models whose batch dimension is fixed: validated at that batch size,
and the log says so."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import parser

from nnship import api
from nnship.cli.main import main
from nnship.core.errors import DataError
from nnship.validate.config import LatencyConfig

FAST = LatencyConfig(runs=3, min_warmup_runs=1, max_warmup_runs=1)


def _fixed_batch_model(path, batch: int) -> str:
    """y = x @ W for x [batch, 4]: a model that takes batches of `batch` only."""
    model = parser.parse_model(
        f"""
        <ir_version: 8, opset_import: ["" : 17]>
        fixed (float[{batch}, 4] x) => (float[{batch}, 3] y)
        <float[4, 3] w = {{{", ".join(str(v / 10) for v in range(12))}}}>
        {{ y = MatMul(x, w) }}
        """
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return str(path)


@pytest.fixture
def data(tmp_path) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.standard_normal((10, 4)).astype(np.float32), labels=np.arange(10) % 3)
    return str(path)


def test_a_model_fixed_at_batch_1_is_validated_at_batch_1(tmp_path, data, capsys):
    model = _fixed_batch_model(tmp_path / "fixed.onnx", 1)
    report = tmp_path / "report.json"
    argv = ["validate", "--baseline", model, "--candidate", model, "--data", data]
    code = main([*argv, "--runs", "3", "--warmup", "1", "--report", str(report)])
    assert code == 0, capsys.readouterr().err
    assert "fix the batch size at 1: validating at batch size 1 (not 32)" in " ".join(
        capsys.readouterr().err.split()
    )
    assert json.loads(report.read_text())["data"]["num_samples"] == 10


def test_a_fixed_batch_of_4_leaves_out_the_last_partial_batch_and_times_at_4(
    tmp_path, data, caplog
):
    model = _fixed_batch_model(tmp_path / "fixed4.onnx", 4)
    with caplog.at_level(logging.INFO, logger="nnship"):
        report = api.validate(model, [model], data, latency=FAST)
    assert "the last 2 of 10 samples are left out" in caplog.text
    assert [s.batch_size for s in report.rows[0].latency] == [4]


def test_models_fixing_different_batch_sizes_are_refused(tmp_path, data):
    one = _fixed_batch_model(tmp_path / "one.onnx", 1)
    two = _fixed_batch_model(tmp_path / "two.onnx", 2)
    with pytest.raises(DataError, match=r"fix different batch sizes \(onnx/fp32 1, .* 2\)"):
        api.validate(one, [two], data, latency=FAST)
