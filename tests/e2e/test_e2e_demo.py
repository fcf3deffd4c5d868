"""`nnship demo`: trains on first use (cached under a key of its settings), then builds the demo
recipe (prune -> distill -> INT8 -> ONNX Runtime + OpenVINO) and writes the HTML report, which
a real browser renders.

The end-to-end tests run the shipped recipe with a smaller model (`small_recipe`): same
sections, a width-16 ResNet at 32x32, so the suite stays fast; the full-size default is what
`make demo` runs (its figures are in the README).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "examples" / "demo" / "recipe.toml"


def small_recipe(tmp_path: Path) -> Path:
    """The shipped demo recipe, every section kept, at test size: a width-16 ResNet with one
    block per stage at 32x32, one distillation epoch, 128 evaluation samples, a fixed range
    method, 20 timed runs, and a top-1 gate loose enough for a model this small."""
    import tomli_w

    from nnship.demo import demo_recipe_data

    raw, _ = demo_recipe_data(SHIPPED)
    assert {"prune", "distill", "quantize", "backends", "validate"} <= set(raw)
    raw["model"]["factory_kwargs"] = {"width": 16, "depths": [1, 1, 1], "stem_stride": 2}
    raw["model"]["inputs"] = ["x:1x3x32x32"]
    raw["distill"]["epochs"] = 1
    raw["data"]["evaluation"]["limit"] = 128
    raw["quantize"]["method"] = "percentile"
    raw["validate"]["latency"]["runs"] = 20
    raw["validate"]["gates"]["max_top1_drop"] = 25.0
    raw["bundle"]["preprocessing"]["resize"] = [32, 32]
    path = tmp_path / "small_demo.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def test_shipped_recipe_names_the_files_prepare_demo_writes(isolated_cache):
    """`nnship build examples/demo/recipe.toml` after `nnship demo` finds the trained model:
    the recipe's paths are the ones the demo's settings key gives."""
    from nnship.demo import EMBEDDED_RECIPE, demo_dir, demo_files, demo_recipe_data, demo_settings
    from nnship.recipe import load_recipe

    assert SHIPPED.read_text(encoding="utf-8") == EMBEDDED_RECIPE
    recipe = load_recipe(SHIPPED, check_files=False)
    raw, path = demo_recipe_data()
    assert path == SHIPPED
    files = demo_files(demo_dir(), demo_settings(raw))
    assert Path(recipe.model.weights) == files.weights
    assert Path(recipe.data.calibration.path) == files.calibration
    assert Path(recipe.data.evaluation.path) == files.evaluation
    assert Path(recipe.data.train.path) == files.train
    assert recipe.prune is not None and recipe.distill is not None
    assert recipe.quantize is not None and "int8" in recipe.quantize.precisions


def test_settings_key_changes_with_what_training_depends_on():
    from nnship.demo import demo_recipe_data, demo_settings, settings_key

    raw, _ = demo_recipe_data()
    base = settings_key(demo_settings(raw))
    assert settings_key(demo_settings(raw)) == base  # stable
    assert settings_key(demo_settings(raw, epochs=1)) != base
    wider = {**raw, "model": {**raw["model"], "factory_kwargs": {"width": 16}}}
    assert settings_key(demo_settings(wider)) != base
    reseeded = {**raw, "seed": 1}
    assert settings_key(demo_settings(reseeded)) != base


def test_a_recipe_the_digits_cannot_feed_is_a_clear_error(tmp_path, isolated_cache):
    from nnship.core.errors import RecipeError
    from nnship.demo import prepare_demo

    bad = small_recipe(tmp_path)
    bad.write_text(bad.read_text().replace('"x:1x3x32x32"', '"x:1x128:int64"'))
    with pytest.raises(RecipeError, match=r"\[model\] inputs must be one image input"):
        prepare_demo(recipe=bad)
    assert not (isolated_cache / "demo").exists() or not any((isolated_cache / "demo").iterdir())


def test_prepare_demo_caches_a_weights_only_state_dict(tmp_path, isolated_cache):
    from nnship.demo import prepare_demo

    recipe = small_recipe(tmp_path)
    files = prepare_demo(recipe=recipe, epochs=1)
    assert files.directory == isolated_cache / "demo"
    assert re.fullmatch(r"resnet_small\.seed0\.[0-9a-f]{12}\.pt", files.weights.name)
    state = torch.load(files.weights, weights_only=True)
    assert state["stem.0.weight"].shape == (16, 3, 3, 3)
    with np.load(files.evaluation) as data:
        assert data["x"].shape[1:] == (3, 32, 32) and len(data["labels"]) == len(data["x"])
    with np.load(files.train) as data:
        assert len(data["x"]) == 1348 and set(np.unique(data["labels"])) == set(range(10))
    stamp = files.weights.stat().st_mtime_ns
    assert prepare_demo(recipe=recipe, epochs=1).weights.stat().st_mtime_ns == stamp  # cached


def test_demo_recipe_points_at_the_cache_and_keeps_installed_sections(isolated_cache):
    from nnship.demo import DemoFiles, demo_recipe

    d = isolated_cache / "demo"
    d.mkdir(parents=True)
    files = DemoFiles(d, d / "w.pt", d / "c.npz", d / "e.npz", d / "t.npz")
    for path in (files.weights, files.calibration, files.evaluation, files.train):
        path.write_bytes(b"")
    recipe = demo_recipe(files)
    assert recipe.model.weights == str(files.weights)
    assert recipe.data.evaluation.path == str(files.evaluation)
    assert recipe.data.train.path == str(files.train)
    assert recipe.quantize is not None and recipe.quantize.precisions == ["int8"]


def _assert_charts_render(geometry: dict, png: Path, report: dict) -> None:
    """What a reader must see: both charts laid out at page width, every mark inside its
    chart, every label drawn with a real font, one dot per timed run, and colour on screen."""
    from skimage.io import imread

    charts = {c["label"]: c for c in geometry["charts"]}
    assert {"latency per run", "accuracy vs latency"} <= set(charts), list(charts)
    assert geometry["width"] <= geometry["viewport"], "the page scrolls sideways"
    for label, chart in charts.items():
        assert chart["rect"]["width"] > 600 and chart["rect"]["height"] > 150, (
            label,
            chart["rect"],
        )
        assert chart["rect"]["x"] + chart["rect"]["width"] <= geometry["viewport"] + 1, label
        width, height = chart["viewBox"]["width"], chart["viewBox"]["height"]
        for shape in chart["shapes"]:
            box = shape["box"]
            if shape["transformed"]:  # the rotated axis title: its box is before rotation
                continue
            assert -1 <= box["x"] and box["x"] + box["width"] <= width + 1, (label, shape)
            assert -1 <= box["y"] and box["y"] + box["height"] <= height + 1, (label, shape)
            if shape["tag"] == "text" and shape["text"].strip():
                assert shape["textLength"] > 0 and box["height"] > 5, (label, shape)
            if shape["tag"] == "rect":
                assert box["width"] > 0 and box["height"] > 0, (label, shape)
    rows = [report["baseline"], *report["rows"]]
    samples = sum(len(stats["samples_ms"]) for row in rows for stats in row["latency"])
    dots = [s for s in charts["latency per run"]["shapes"] if s["cls"] == "dot"]
    assert samples > 0 and len(dots) == samples
    boxes = [s for s in charts["latency per run"]["shapes"] if s["cls"] == "box"]
    assert len(boxes) == len(rows)
    points = [s for s in charts["accuracy vs latency"]["shapes"] if s["cls"] == "point"]
    assert len(points) == len(rows)
    # the compiled artifacts are not all drawn on one spot (a linear axis with the slow
    # PyTorch baseline did that)
    assert len({round(p["box"]["x"]) for p in points}) >= 3

    image = imread(png)[..., :3].astype(int)
    assert image.shape[1] >= 1000
    background = (image == image[0, 0]).all(axis=-1) | (image > 235).all(axis=-1)
    assert background.mean() < 0.97, "the screenshot is (nearly) blank"
    for hex_color in ("#4c78a8", "#f58518", "#54a24b"):  # the first three artifacts' colours
        rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
        painted = (np.abs(image - rgb) < 24).all(axis=-1).sum()
        assert painted > 40, f"{hex_color} is not painted ({painted} px)"


@pytest.mark.slow
def test_nnship_demo_end_to_end_and_the_report_renders_in_a_browser(
    run_cli, tmp_path, browser_render
):
    env = {"NNSHIP_CACHE_DIR": str(tmp_path / "cache")}
    recipe = small_recipe(tmp_path)
    dist = tmp_path / "dist" / "demo"
    proc = run_cli("demo", "--recipe", recipe, "-o", tmp_path / "build", "--dist", dist, env=env)
    assert proc.returncode == 0, proc.stderr
    # the demo ends with a bundle that nnship.runtime loads and smoke-tests
    manifest = json.loads((dist / "manifest.json").read_text())
    assert {a["id"] for a in manifest["artifacts"]} == {
        "onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8"
    }  # fmt: skip
    assert manifest["labels"] == [str(d) for d in range(10)]
    assert (dist.parent / "demo.tar.gz").is_file()
    assert "bundle loaded with nnship.runtime: openvino/int8 on CPU: passed" in proc.stdout
    report = json.loads((tmp_path / "build" / "report" / "report.json").read_text())
    labels = [row["label"] for row in report["rows"]]
    assert labels == ["onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8"]
    assert report["baseline"]["classification"]["accuracy"] > 80
    assert report["data"]["num_samples"] == 128
    assert report["passed"] is True
    stages = report["extra"]["build"]["stages"]
    assert stages["prune"] == "ran" and stages["distill"] == "ran"
    html = tmp_path / "build" / "report" / "report.html"
    assert html.is_file() and (tmp_path / "build" / "report" / "report.md").is_file()
    assert f"html report: {html}" in proc.stdout and "gate checks passed" in proc.stdout
    (weights,) = (tmp_path / "cache" / "demo").glob("resnet_small.seed0.*.pt")
    stamp = weights.stat().st_mtime_ns

    # a rerun into another build folder trains nothing and reuses the distillation
    again = run_cli(
        "demo", "--recipe", recipe, "-o", tmp_path / "again", "--dist", tmp_path / "d2", env=env
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads((tmp_path / "again" / "report" / "report.json").read_text())
    assert rerun["extra"]["build"]["stages"]["distill"] == "reused"
    assert weights.stat().st_mtime_ns == stamp

    geometry, png = browser_render(html)
    _assert_charts_render(geometry, png, report)
    if os.environ.get("NNSHIP_KEEP_SCREENSHOT"):  # for a look by eye
        Path(os.environ["NNSHIP_KEEP_SCREENSHOT"]).write_bytes(png.read_bytes())
