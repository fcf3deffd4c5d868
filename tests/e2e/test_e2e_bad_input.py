"""Bad input through the real CLI: exit code 2, one clear line naming the file/key/tensor, no
traceback, and nothing half-written in the build folder."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

RECIPE = """\
name = "bad"
[model]
source = "{source}"
inputs = ["x:1x1x8x8"]
{model_extra}
[data.evaluation]
path = "{data}"
"""


def _assert_clean_failure(proc, build_dir, *patterns: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("nnship:")]
    assert len(lines) == 1, proc.stderr
    message = lines[0]
    assert message.startswith("nnship: error: ")
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    files = [p for p in build_dir.rglob("*") if p.is_file()] if build_dir.exists() else []
    assert files == [], files


@pytest.fixture
def npz(tmp_path):
    """`npz(name, **arrays)` writes an .npz into tmp_path and returns its path."""

    def write(name: str, **arrays: np.ndarray):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    return write


def _good_x(n: int = 16) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 1, 8, 8)).astype(np.float32)


def _recipe(write_recipe, *, source="nnship.models:digits_cnn", data="eval.npz", model_extra=""):
    return write_recipe(RECIPE.format(source=source, data=data, model_extra=model_extra))


def test_typo_in_recipe_key(run_cli, write_recipe, tmp_path):
    recipe = write_recipe(
        textwrap.dedent(
            """\
            name = "bad"
            [model]
            source = "nnship.models:digits_cnn"
            [validate.gates]
            max_top1_dorp = 1
            """
        )
    )
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(
        proc,
        tmp_path / "out",
        re.escape(f"{recipe}: [validate.gates] max_top1_dorp: unknown key"),
        r"did you mean max_top1_drop\?",
    )


def test_factory_module_that_does_not_import(run_cli, write_recipe, npz, tmp_path):
    npz("eval.npz", x=_good_x())
    recipe = _recipe(write_recipe, source="no_such_pkg.models:net")
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", r"no_such_pkg")


def test_factory_that_raises(run_cli, write_recipe, npz, tmp_path):
    npz("eval.npz", x=_good_x())
    (tmp_path / "net.py").write_text(
        "def build():\n    raise RuntimeError('checkpoint server unreachable')\n"
    )
    recipe = _recipe(write_recipe, source="net.py:build")
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", r"build", r"checkpoint server unreachable")


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage-not-onnx" * 10], ids=["empty", "junk"])
def test_onnx_file_that_is_truncated_or_not_onnx(run_cli, write_recipe, npz, tmp_path, content):
    npz("eval.npz", x=_good_x())
    (tmp_path / "model.onnx").write_bytes(content)
    recipe = _recipe(write_recipe, source="model.onnx")
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", re.escape(str(tmp_path / "model.onnx")))


def test_truncated_real_onnx(run_cli, write_recipe, npz, tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    full = tmp_path / "full.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(full), dynamo=False, input_names=["x"])
    data = full.read_bytes()
    (tmp_path / "model.onnx").write_bytes(data[: len(data) // 2])
    npz("eval.npz", x=_good_x())
    recipe = _recipe(write_recipe, source="model.onnx")
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", r"model\.onnx")


@pytest.mark.parametrize(
    ("arrays", "patterns"),
    [
        ({"y": _good_x()}, [r"'x'", r"'y'|\by\b"]),
        ({"x": _good_x().reshape(16, 64)}, [r"'x'", r"rank|shape"]),
        ({"x": np.ones((16, 1, 8, 8), dtype=np.int32)}, [r"'x'", r"int32|dtype|float32"]),
        ({"x": np.zeros((0, 1, 8, 8), dtype=np.float32)}, [r"empty|0 samples"]),
    ],
    ids=["input-name", "rank", "dtype", "empty"],
)
def test_data_that_does_not_fit_the_model(run_cli, write_recipe, npz, tmp_path, arrays, patterns):
    path = npz("eval.npz", **arrays)
    recipe = _recipe(write_recipe)
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", re.escape(path.name), *patterns)


def test_nan_in_data(run_cli, write_recipe, npz, tmp_path):
    x = _good_x()
    x[3, 0, 2, 2] = np.nan
    npz("eval.npz", x=x)
    recipe = _recipe(write_recipe)
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", r"'x'", r"NaN")


def test_zero_byte_data_file(run_cli, write_recipe, tmp_path):
    (tmp_path / "eval.npz").write_bytes(b"")
    recipe = _recipe(write_recipe)
    proc = run_cli("build", recipe, "-o", tmp_path / "out")
    _assert_clean_failure(proc, tmp_path / "out", r"eval\.npz")


def test_output_directory_not_writable(run_cli, write_recipe, npz, tmp_path):
    npz("eval.npz", x=_good_x())
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    recipe = _recipe(write_recipe)
    proc = run_cli("build", recipe, "-o", blocker / "out")
    _assert_clean_failure(proc, blocker / "out", re.escape(str(blocker / "out")))
    assert blocker.read_text() == "not a folder"
