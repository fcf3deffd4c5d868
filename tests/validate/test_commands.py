"""Helpers behind the commands: backend options, backend guessing, the recipe section."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnship.core.errors import BackendError, DataError, RecipeError
from nnship.validate.commands import (
    guess_backend,
    options_for,
    parse_backend_options,
    read_validate_section,
)


def test_backend_options_parse_both_spellings_and_types() -> None:
    tokens = ["--hint", "latency", "--num-streams=2", "--cache", "--ratio", "0.5", "x=false"]
    assert parse_backend_options(tokens) == {
        "hint": "latency",
        "num_streams": 2,
        "cache": True,
        "ratio": 0.5,
        "x": False,
    }
    with pytest.raises(DataError, match="KEY=VALUE"):
        parse_backend_options(["stray"])


def test_scoped_options_reach_only_their_backend() -> None:
    options = parse_backend_options(["--threads", "2", "--openvino.hint", "latency",
                                     "--ort.graph-optimization", "basic"])  # fmt: skip
    assert options_for("openvino", options) == {"threads": 2, "hint": "latency"}
    assert options_for("onnxruntime", options) == {"threads": 2, "graph_optimization": "basic"}
    assert options_for("tensorrt", options) == {"threads": 2}


def test_backend_is_guessed_from_suffix_or_artifact_json(tmp_path: Path) -> None:
    assert guess_backend(Path("m.onnx")) == "onnxruntime"
    assert guess_backend(Path("m.xml")) == "openvino"
    assert guess_backend(Path("m.engine")) == "tensorrt"
    (tmp_path / "artifact.json").write_text('{"backend": "openvino", "path": "model.xml"}')
    assert guess_backend(tmp_path) == "openvino"
    with pytest.raises(BackendError, match="--candidate-backend"):
        guess_backend(Path("m.bin"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="artifact.json"):
        guess_backend(empty)


def test_recipe_validate_section(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'name = "x"\n[validate]\nbatch_size = 8\n[validate.gates]\nmin_cosine = 0.99\n'
        "[validate.latency]\nbatch_sizes = [1, 4]\n"
    )
    config = read_validate_section(recipe)
    assert config.batch_size == 8 and config.gates.min_cosine == 0.99
    assert config.latency.batch_sizes == [1, 4]
    recipe.write_text("[validate.gates]\nmin_cosin = 0.99\n")
    with pytest.raises(RecipeError, match=r"gates.min_cosin"):
        read_validate_section(recipe)


def test_artifact_size_counts_openvino_weights(tmp_path: Path) -> None:
    from nnship.validate.validate import artifact_size_bytes

    (tmp_path / "model.xml").write_bytes(b"x" * 10)
    (tmp_path / "model.bin").write_bytes(b"w" * 1000)
    assert artifact_size_bytes(tmp_path / "model.xml") == 1010
    assert artifact_size_bytes(tmp_path) == 1010


@pytest.mark.slow
def test_bench_an_openvino_directory_with_passed_options(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    import numpy as np
    import onnx

    from nnship.backends import get_backend
    from nnship.validate.bench import bench
    from nnship.validate.config import LatencyConfig

    model = onnx.parser.parse_model(
        """<ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 6] x) => (float[N, 6] output) { output = MatMul(x, W) }"""
    )
    weights = np.arange(36, dtype=np.float32).reshape(6, 6)
    model.graph.initializer.append(onnx.numpy_helper.from_array(weights, "W"))
    onnx.save(model, tmp_path / "m.onnx")
    get_backend("openvino").compile(tmp_path / "m.onnx", tmp_path / "ov", precision="fp32")
    latency = LatencyConfig(runs=5, max_warmup_runs=2, min_warmup_runs=1, stable_window=2,
                            batch_sizes=[1, 2], threads=1, throughput_s=0.2)  # fmt: skip
    result = bench(tmp_path / "ov", latency=latency, backend_options={"hint": "latency"})
    assert result.backend == "openvino" and [s.batch_size for s in result.latency] == [1, 2]
    assert result.latency[0].async_throughput_per_s is not None  # OpenVINO's async queue
    assert result.size_bytes and result.size_bytes > (tmp_path / "ov/model.xml").stat().st_size
