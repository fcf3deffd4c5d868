"""ONNX Runtime: `backend.py` (an ONNX file to an artifact), `runner.py` (run it), `options.py`
(`[backends.onnxruntime]`)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "OnnxRuntimeBackend": "nnship.backends.onnxruntime.backend",
    "OnnxRuntimeOptions": "nnship.backends.onnxruntime.options",
    "OnnxRuntimeRunner": "nnship.backends.onnxruntime.runner",
    "resolve_providers": "nnship.backends.onnxruntime.runner",
}


def __getattr__(name: str) -> Any:
    """Import the runner and backend modules on first use: importing the options (the recipe
    does) must not import the runtime"s modules."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
