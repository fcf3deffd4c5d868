"""nnship-runtime alone: a fresh virtual environment with only ./runtime, numpy and
onnxruntime (no system site packages) runs a real bundle, and torch, onnx, nncf and pydantic
cannot be imported there."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest
from venv_helper import RegistryUnreachable, clean_env, runtime_venv, venv_python

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
    smoke = {t: bundle.smoke_test(t).to_dict() for t in bundle.targets
             if bundle.runnable_targets()[t] is None}
    try:
        bundle.session("openvino/int8")
        refused = None
    except BundleError as exc:
        refused = str(exc)
    print(json.dumps({
        "import_failed": missing,
        "runtime_file": nnship.runtime.__file__,
        "nnship_is_namespace": not hasattr(sys.modules["nnship"], "__file__")
                               or sys.modules["nnship"].__file__ is None,
        "target": model.target,
        "max_err": {k: float(np.max(np.abs(got[k] - want[k]))) for k in want},
        "smoke": smoke,
        "refused": refused,
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


@pytest.mark.slow
def test_runtime_runs_a_bundle_where_torch_cannot_be_imported(venv_dir, bundle_dir):
    proc = subprocess.run(
        [str(venv_python(venv_dir)), "-c", SCRIPT, str(bundle_dir)],
        capture_output=True, text=True, env=clean_env(), timeout=300, check=False, cwd=venv_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert all(result["import_failed"].values()), result["import_failed"]
    assert str(venv_dir) in result["runtime_file"]  # the installed copy, not the worktree
    assert result["nnship_is_namespace"]
    assert result["target"] == "onnxruntime/int8"  # auto without OpenVINO installed
    assert result["max_err"] == {"logits": pytest.approx(0.0, abs=1e-5)}
    assert result["smoke"] and all(s["passed"] for s in result["smoke"].values())
    assert set(result["smoke"]) == {"onnxruntime/fp32", "onnxruntime/int8"}
    assert "openvino is not installed" in result["refused"]
    assert "onnxruntime/fp32" in result["refused"]  # what the bundle offers
    assert "torch" not in result["modules"]
