"""`nnship prune` and `nnship distill` end to end on the trained digits CNN."""

from __future__ import annotations

import json

import pytest

from nnship.cli.main import main
from nnship.sources.models import load_model

MODEL = ["nnship.models:digits_cnn", "--factory-arg", "width=8", "--input", "x:1x1x8x8"]


def test_bad_ratio_exits_2(capsys, tmp_path):
    code = main(["prune", *MODEL, "--ratio", "1.0", "-o", str(tmp_path / "p.pt2")])
    assert code == 2
    assert "--ratio" in capsys.readouterr().err
    assert not (tmp_path / "p.pt2").exists()


def test_help_explains_the_ratio(capsys):
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    assert "fraction of channels" in capsys.readouterr().out


@pytest.mark.slow
def test_prune_then_distill(tmp_path, trained_digits_cnn, digits_npz, capsys):
    pruned, student = tmp_path / "pruned.pt2", tmp_path / "student.pt2"
    report = tmp_path / "prune.json"
    weights = ["--weights", str(trained_digits_cnn)]
    code = main(
        ["prune", *MODEL, *weights, "--ratio", "0.5", "--round-to", "2", "--importance", "taylor",
         "--data", str(digits_npz["calibration"]), "--eval", str(digits_npz["evaluation"]),
         "--latency-runs", "5", "-o", str(pruned), "--json", str(report)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["params_after"] < data["params_before"] and data["flops_ratio"] < 1
    assert set(data["eval"]["pruned"]) == {"accuracy", "agreement"}
    assert "parameters" in out and "FLOPs" in out and "latency" in out
    assert data["recalibrated_bn"] == ["features.1", "features.5"] and "recalibrated" in out
    code = main(
        ["distill", "--teacher", *MODEL, "--teacher-weights", str(trained_digits_cnn),
         "--student", str(pruned), "--data", str(digits_npz["calibration"]), "--epochs", "2",
         "-o", str(student)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert student.is_file() and "agreement with the teacher" in out
    assert "validation accuracy: teacher" in out  # the data has labels
    assert load_model(student).input_specs[0].shape == ("batch", 1, 8, 8)
