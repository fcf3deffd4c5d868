"""One real build shared by the bundle tests: the trained digits CNN, ONNX Runtime, OpenVINO
and a TensorRT build kit, fp32 + int8, latency off (the bundle copies whatever was measured)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_recipes import recipe_text


@pytest.fixture(scope="session")
def built(tmp_path_factory, trained_digits_cnn, digits_npz) -> Path:
    """A finished build folder (report + artifacts), built once per test session."""
    from nnship.pipeline import build

    folder = tmp_path_factory.mktemp("bundle_build")
    recipe = folder / "recipe.toml"
    recipe.write_text(recipe_text(trained_digits_cnn, digits_npz), encoding="utf-8")
    result = build(recipe, output_dir=folder / "build")
    assert result.exit_code == 0
    return result.output_dir


@pytest.fixture(scope="session")
def bundled(tmp_path_factory, built) -> Path:
    """One bundle of `built` (ONNX Runtime int8 + OpenVINO int8 + TensorRT int8 kit) that
    tests copy before changing it."""
    from nnship.bundle.writer import write_bundle

    out = tmp_path_factory.mktemp("bundle_dist") / "tiny"
    targets = ["onnxruntime/int8", "openvino/int8", "tensorrt/int8"]
    return write_bundle(built, out, targets=targets, archive=True).path
