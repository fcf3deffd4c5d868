"""`nnship export` through the real command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from nnship.cli.cmd_export import parse_value
from nnship.cli.main import main


def test_factory_args_are_read_as_toml() -> None:
    assert parse_value("32") == 32 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value('"a"') == "a"
    assert parse_value("plain") == "plain"


@pytest.mark.slow
def test_export_factory_with_args(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.onnx"
    report = tmp_path / "export.json"
    code = main(
        [
            "export", "nnship.models:resnet_small", "--input", "x:1x3x8x8",
            "--factory-arg", "width=4", "--factory-arg", "depths=[1]",
            "--exporter", "torchscript", "-o", str(out), "--json", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "x [batch, 3, 8, 8] float32" in printed and "max abs error" in printed
    assert onnx.load(str(out)).graph.output[0].name == "output"
    data = json.loads(report.read_text())
    assert data["exporter"] == "torchscript" and data["opset"] == 18


@pytest.mark.slow
def test_export_pt2_uses_its_own_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nnship.models import encoder_small
    from nnship.sources.pt2 import save_pt2

    pt2 = tmp_path / "enc.pt2"
    module = encoder_small(vocab_size=30, max_len=8, d_model=8, heads=2, layers=1)
    examples = {
        "input_ids": np.arange(6, dtype=np.int64).reshape(1, 6),
        "attention_mask": np.ones((1, 6), np.int64),
    }
    save_pt2(module, examples, pt2)
    out = tmp_path / "enc.onnx"
    assert main(["export", str(pt2), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "input_ids [batch, 6] int64" in printed
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["input_ids", "attention_mask"]


def test_bad_options_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    args = ["export", "nnship.models:resnet_small", "--input", "x:1x3x8x8", "-o", str(out)]
    assert main([*args, "--opset", "5"]) == 2
    assert "--opset" in capsys.readouterr().err
    assert main([*args, "--dynamic-axis", "x:one:b"]) == 2
    assert "NAME:AXIS:DIM" in capsys.readouterr().err
    assert main(["export", "nnship.models:resnet_small", "-o", str(out)]) == 2
    assert "--input" in capsys.readouterr().err
    assert not out.exists()
