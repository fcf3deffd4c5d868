"""`nnship run DIST --input/--image`: real sessions, real images, exit codes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from skimage import data

from nnship import api
from nnship.cli.main import main


@pytest.fixture(scope="module")
def samples(bundle_dir):
    with np.load(bundle_dir / "samples/inputs.npz") as d:
        x = d["x"]
    with np.load(bundle_dir / "samples/expected.onnxruntime-fp32.npz") as d:
        want = d["logits"]
    return x, want


def test_run_npy_prints_top_k_with_labels_and_writes_the_outputs(
    bundle_dir, samples, tmp_path, capsys
):
    x, want = samples
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    code = main(["run", str(bundle_dir), "--input", str(tmp_path / "x.npy"),
                 "--target", "onnxruntime/fp32", "-o", str(out), "--top-k", "2"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "tiny: onnxruntime/fp32 on CPU" in text and "logits: [4, 5] float32" in text
    best = [["red", "green", "blue", "dark", "bright"][i] for i in want.argmax(axis=1)]
    for sample, label in enumerate(best):
        assert f"logits[{sample}] top-2: {label} " in text
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["logits"], want, atol=1e-5)


def test_run_npz_as_json(bundle_dir, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 3, 16, 16), np.float32))
    assert main(["run", str(bundle_dir), "--input", str(tmp_path / "in.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["target"] == "openvino/int8"
    assert result["outputs"]["logits"]["shape"] == [2, 5]
    assert len(result["top_k"]) == 2 and len(result["top_k"][0]["classes"]) == 5


def test_run_image_applies_the_declared_preprocessing(bundle_dir, tmp_path, capsys):
    image = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(image, quality=95)
    assert main(["run", str(bundle_dir), "--image", str(image), "--target", "onnxruntime"]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime/int8" in text and "cat.jpg" in text and "logits[0] top-5:" in text
    # the same numbers as preprocessing the decoded pixels through the Python API
    result = api.run_bundle(bundle_dir, image=image, target="onnxruntime/fp32")
    from nnship.runtime import Bundle

    bundle = Bundle.load(bundle_dir)
    x = bundle.preprocess(np.asarray(Image.open(image)))
    np.testing.assert_allclose(
        result.outputs["logits"], bundle.session("onnxruntime/fp32").run({"x": x})["logits"]
    )


@pytest.mark.parametrize("mode", ["P", "CMYK"])
def test_palette_and_cmyk_images_are_colour_images(bundle_dir, tmp_path, mode):
    path = tmp_path / ("cat.png" if mode == "P" else "cat.jpg")
    Image.fromarray(data.chelsea()).convert(mode).save(path)
    result = api.run_bundle(bundle_dir, image=path, target="onnxruntime/fp32")
    assert result.outputs["logits"].shape == (1, 5)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_grey_and_alpha_images_are_converted_as_pillow_converts_them(
    bundle_dir, tmp_path, capsys, mode
):
    path = tmp_path / "digit.png"
    Image.fromarray(data.chelsea()).convert(mode).save(path)
    assert main(["run", str(bundle_dir), "--image", str(path), "--target", "onnxruntime"]) == 0
    assert "logits[0] top-5:" in capsys.readouterr().out
    from nnship.runtime import Bundle

    bundle = Bundle.load(bundle_dir)
    x = bundle.preprocess(np.asarray(Image.open(path).convert("RGB")))
    result = api.run_bundle(bundle_dir, image=path, target="onnxruntime/fp32")
    np.testing.assert_allclose(
        result.outputs["logits"], bundle.session("onnxruntime/fp32").run({"x": x})["logits"]
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not an image at all"), "not a decodable image"),
        (lambda p: Image.fromarray(data.camera().astype(np.uint16) * 257).save(p, format="PNG"),
         r"dtype uint16; expected uint8 \(or float\) pixels"),
    ],
)  # fmt: skip
def test_a_bad_image_exits_2_naming_the_file(bundle_dir, tmp_path, capsys, make, message):
    path = tmp_path / "cat.jpg"
    make(path)
    assert main(["run", str(bundle_dir), "--image", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and re.search(message, err), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("array", "key", "message"),
    [
        (np.zeros((1, 3, 16, 16), np.float64), "x", r"input 'x': dtype float64"),
        (np.zeros((1, 3, 8, 8), np.float32), "x", r"input 'x': shape \[1, 3, 8, 8\]"),
        (np.zeros((1, 3, 16, 16), np.float32), "image", r"missing input\(s\) \['x'\]"),
    ],
)
def test_bad_arrays_exit_2_naming_the_tensor(bundle_dir, tmp_path, capsys, array, key, message):
    np.savez(tmp_path / "in.npz", **{key: array})
    assert main(["run", str(bundle_dir), "--input", str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


def test_unreadable_input_files_exit_2_naming_the_file(bundle_dir, tmp_path, capsys):
    (tmp_path / "x.npy").write_bytes(b"garbage")
    assert main(["run", str(bundle_dir), "--input", str(tmp_path / "x.npy")]) == 2
    assert "x.npy: not a readable .npy file" in capsys.readouterr().err
    assert main(["run", str(bundle_dir), "--input", str(tmp_path / "none.npz")]) == 2
    assert "none.npz: no such input file" in capsys.readouterr().err


def test_a_tampered_bundle_or_absent_target_exits_2(bundle_copy, bundle_dir, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    assert (
        main(
            [
                "run",
                str(bundle_dir),
                "--input",
                str(tmp_path / "x.npy"),
                "--target",
                "tensorrt/int8",
            ]
        )
        == 2
    )
    assert "not in this bundle; it offers onnxruntime/fp32" in capsys.readouterr().err
    (bundle_copy.path / "samples/inputs.npz").write_bytes(b"x")
    assert main(["run", str(bundle_copy.path), "--input", str(tmp_path / "x.npy")]) == 2
    assert "inputs.npz: truncated" in capsys.readouterr().err
