"""`import nnship.recipe` and `import nnship.api` never import torch (or a backend runtime):
checked in a fresh interpreter, where nothing else has imported it first."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "openvino", "tensorrt", "nncf")


@pytest.mark.parametrize("module", ["nnship.recipe", "nnship.api", "nnship.pipeline"])
def test_import_does_not_load_torch_or_runtimes(module):
    code = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{module} imported {proc.stdout.strip()}"


def test_the_recipe_still_knows_every_stage_section():
    """Lazy imports must not turn a stage section into the 'not installed' placeholder."""
    code = (
        "from nnship.recipe import section_available\n"
        "print(all(section_available(s) for s in "
        "('data', 'export', 'prune', 'distill', 'quantize', 'backends', 'validate', 'bundle')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.stdout.strip() == "True", proc.stderr


def test_the_recipe_loads_only_config_models_and_the_core():
    """`import nnship.recipe` reads the stages' config models, nothing of the stages themselves
    (it loaded 90 nnship modules and onnx before the packages got lazy faces)."""
    code = (
        "import sys, nnship.recipe\n"
        "mods = [m for m in sys.modules if m.startswith('nnship')]\n"
        "print('onnx' in sys.modules)\n"
        "print(' '.join(m for m in mods if not (m.startswith(('nnship.core', 'nnship.recipe'))\n"
        "    or m.endswith(('.config', '.options')) or hasattr(sys.modules[m], '__path__'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    onnx_loaded, others = proc.stdout.splitlines()
    assert onnx_loaded == "False"
    assert others == "", f"nnship.recipe imported {others}"
