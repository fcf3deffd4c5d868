"""`nnship.runtime` imports only the standard library and numpy (and, once a session opens,
the runtime it drives): checked in a fresh interpreter, where nothing else imported them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CODE = """
import json, sys
before = set(sys.modules)
import nnship.runtime
after_import = set(sys.modules) - before
extra = []
if len(sys.argv) > 1:
    model = nnship.runtime.Bundle.load(sys.argv[1]).session(sys.argv[2])
    extra = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"import": sorted({m.split(".")[0] for m in after_import}), "session": extra}))
"""


def _run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _foreign(names: list[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and not n.startswith("_")} - {
        "nnship", "numpy"
    }  # fmt: skip


def test_import_loads_only_stdlib_and_numpy():
    assert _foreign(_run()["import"]) == set()


@pytest.mark.parametrize(
    ("target", "runtime"), [("onnxruntime/fp32", "onnxruntime"), ("openvino/int8", "openvino")]
)
def test_a_session_loads_only_its_runtime(bundle_dir, target, runtime):
    loaded = _foreign(_run(str(bundle_dir), target)["session"])
    assert runtime in loaded
    assert not loaded & {
        "torch",
        "onnx",
        "nncf",
        "pydantic",
        "PIL",
        "openvino" if runtime != "openvino" else "onnxruntime",
    }
