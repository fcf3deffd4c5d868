"""`nnship demo`: trains on first use (cached with its seed), then builds the demo recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


def test_prepare_demo_caches_a_weights_only_state_dict(isolated_cache):
    from nnship.demo import prepare_demo

    files = prepare_demo(epochs=1)
    assert files.directory == isolated_cache / "demo"
    state = torch.load(files.weights, weights_only=True)
    assert "classifier.3.weight" in state
    with np.load(files.evaluation) as data:
        assert data["x"].shape[1:] == (1, 8, 8) and len(data["labels"]) == len(data["x"])
    stamp = files.weights.stat().st_mtime_ns
    assert prepare_demo(epochs=1).weights.stat().st_mtime_ns == stamp  # cached, not retrained


def test_demo_recipe_points_at_the_cache_and_keeps_installed_sections(isolated_cache):
    from nnship.demo import DemoFiles, demo_recipe

    d = isolated_cache / "demo"
    d.mkdir(parents=True)
    files = DemoFiles(d, d / "w.pt", d / "c.npz", d / "e.npz")
    for path in (files.weights, files.calibration, files.evaluation):
        path.write_bytes(b"")
    recipe = demo_recipe(files)
    assert recipe.model.weights == str(files.weights)
    assert recipe.data.evaluation.path == str(files.evaluation)
    assert recipe.quantize is not None and recipe.quantize.precisions == ["int8"]


@pytest.mark.slow
def test_nnship_demo_end_to_end(run_cli, tmp_path):
    env = {"NNSHIP_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_cli("demo", "-o", tmp_path / "build", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "build" / "report" / "report.json").read_text())
    labels = [row["label"] for row in report["rows"]]
    assert "onnxruntime/fp32" in labels and "onnxruntime/int8" in labels
    assert report["baseline"]["classification"]["accuracy"] > 90
    assert report["passed"] is True
    assert (tmp_path / "cache" / "demo" / "digits_cnn.seed0.pt").is_file()
    assert "all" in proc.stdout and "gate checks passed" in proc.stdout
