"""nnship-runtime alone: a fresh virtual environment with only ./runtime, numpy and
onnxruntime (no system site packages) runs a bundle written by `nnship.bundle.write_bundle`
from a real build, and torch, onnx, nncf and pydantic cannot be imported there."""

from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pytest
from venv_helper import RegistryUnreachable, clean_env, runtime_venv, venv_python

from tests.recipes import digits_recipe

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np

    missing = {}
    for name in ("torch", "onnx", "nncf", "pydantic", "openvino", "PIL"):
        try:
            __import__(name)
            missing[name] = False
        except ImportError:
            missing[name] = True

    import nnship.runtime
    from nnship.runtime import Bundle, BundleError

    bundle = Bundle.load(sys.argv[1])
    model = bundle.session()
    inputs = bundle.sample_inputs()
    got = model.run(inputs)
    want = bundle.expected_outputs(model.target)
    runnable = bundle.runnable_targets()
    smoke = {t: bundle.smoke_test(t).to_dict() for t in bundle.targets if runnable[t] is None}
    try:
        bundle.session("openvino/int8")
        refused = None
    except BundleError as exc:
        refused = str(exc)
    image = (np.arange(100, dtype=np.uint8).reshape(10, 10) * 2)
    top = model.run({"x": bundle.preprocess(image)})["output"].argmax()
    print(json.dumps({
        "import_failed": missing,
        "runtime_file": nnship.runtime.__file__,
        "nnship_is_namespace": getattr(sys.modules["nnship"], "__file__", None) is None,
        "target": model.target,
        "max_err": {k: float(np.max(np.abs(got[k] - want[k]))) for k in want},
        "smoke": smoke,
        "refused": refused,
        "top": int(top),
        "modules": sorted({m.split(".")[0] for m in sys.modules}),
    }))
    """
)


@pytest.fixture(scope="module")
def venv_dir(request):
    cache = request.config.cache.mkdir("nnship-runtime-venvs")
    try:
        return runtime_venv(cache)
    except RegistryUnreachable as exc:
        pytest.skip(f"pip cannot reach a package registry: {exc}")


@pytest.fixture(scope="module")
def written_bundle(tmp_path_factory, trained_digits_cnn, digits_npz):
    """A real build of the trained digits CNN (ONNX Runtime + OpenVINO, INT8) bundled by the
    bundle writer, with labels and a greyscale preprocessing."""
    from nnship import api
    from nnship.bundle.writer import write_bundle

    work = tmp_path_factory.mktemp("runtime-build")
    recipe = work / "recipe.toml"
    sections = """
        [quantize]
        precisions = ["int8"]
        [backends]
        targets = ["onnxruntime", "openvino"]
        [validate.latency]
        enabled = false
        """
    recipe.write_text(
        digits_recipe(trained_digits_cnn, digits_npz, name="digits", sections=sections)
    )
    result = api.build(recipe, output_dir=work / "build")
    assert result.exit_code == 0
    # the model's input is (ink / 16 - 0.3) / 0.4 (nnship.datasets.digits_images): for an
    # 8-bit image, scale 1/255, mean 0.3, std 0.4
    written = write_bundle(
        work / "build", work / "dist" / "digits", labels=[str(i) for i in range(10)],
        preprocessing={"resize": [8, 8], "color": "GRAY", "scale": 1 / 255, "mean": [0.3],
                       "std": [0.4]},
    )  # fmt: skip
    return written.path


@pytest.mark.slow
def test_runtime_runs_a_written_bundle_where_torch_cannot_be_imported(venv_dir, written_bundle):
    proc = subprocess.run(
        [str(venv_python(venv_dir)), "-c", SCRIPT, str(written_bundle)],
        capture_output=True, text=True, env=clean_env(), timeout=300, check=False, cwd=venv_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert all(result["import_failed"].values()), result["import_failed"]
    assert str(venv_dir) in result["runtime_file"]  # the installed copy, not the worktree
    assert result["nnship_is_namespace"]
    assert result["target"] == "onnxruntime/int8"  # auto, OpenVINO not installed there
    assert max(result["max_err"].values()) <= 1e-4
    assert set(result["smoke"]) == {"onnxruntime/fp32", "onnxruntime/int8"}
    assert all(s["passed"] for s in result["smoke"].values()), result["smoke"]
    assert "openvino is not installed" in result["refused"]
    assert "onnxruntime/fp32" in result["refused"]  # what the bundle offers
    assert 0 <= result["top"] < 10
    assert not {"torch", "onnx", "nncf", "pydantic"} & set(result["modules"])


@pytest.mark.slow
def test_the_full_package_smoke_tests_every_artifact_of_the_written_bundle(written_bundle):
    """Here (OpenVINO installed too) all four artifacts reproduce the writer's outputs."""
    from nnship.runtime import Bundle

    bundle = Bundle.load(written_bundle)
    assert bundle.session().target == "openvino/int8"
    results = [bundle.smoke_test(t) for t in bundle.targets]
    assert [r.target for r in results] == bundle.targets and len(results) == 4
    assert all(r.passed for r in results), [r.summary() for r in results]


@pytest.mark.slow
def test_nnship_run_reads_real_digit_images_like_the_arrays(
    written_bundle, digits_npz, tmp_path, capsys
):
    """Real handwritten digits saved as 8-bit PNGs, run through the bundle's declared
    preprocessing, give the model's answer on the original (standardized) arrays."""
    from PIL import Image

    from nnship import api
    from nnship.cli.main import main

    with np.load(digits_npz["evaluation"]) as data:
        digits = data["x"][:16]  # (16, 1, 8, 8) float32, (ink / 16 - 0.3) / 0.4
    on_arrays = api.run_bundle(written_bundle, inputs={"x": digits}, target="onnxruntime/fp32")
    want = on_arrays.outputs["output"].argmax(axis=1)
    got = []
    for i, digit in enumerate(digits):
        path = tmp_path / f"digit{i}.png"
        pixels = np.clip(np.rint((digit[0] * 0.4 + 0.3) * 255), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path)
        assert main(["run", str(written_bundle), "--image", str(path), "--target",
                     "onnxruntime/fp32", "--json"]) == 0  # fmt: skip
        result = json.loads(capsys.readouterr().out)
        got.append(result["top_k"][0]["classes"][0]["index"])
        assert result["top_k"][0]["classes"][0]["label"] == str(got[-1])
    assert got == want.tolist()
