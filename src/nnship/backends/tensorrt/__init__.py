"""TensorRT: `backend.py` (engine where a GPU is, build kit always), `runner.py`, `engine.py` (the
builder the kit runs on the device), `buildkit.py`, `check.py` + `ops.py` (will the parser take
it), `options.py` (`[backends.tensorrt]`)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TensorRtBackend": "nnship.backends.tensorrt.backend",
    "TensorRtOptions": "nnship.backends.tensorrt.options",
    "TensorRtRunner": "nnship.backends.tensorrt.runner",
    "resolve_options": "nnship.backends.tensorrt.backend",
    "tensorrt_unavailable_reason": "nnship.backends.tensorrt.backend",
}


def __getattr__(name: str) -> Any:
    """Import the runner and backend modules on first use: importing the options (the recipe
    does) must not import the runtime"s modules."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
