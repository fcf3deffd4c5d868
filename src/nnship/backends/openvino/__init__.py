"""OpenVINO: `backend.py` (ONNX to IR artifacts), `runner.py` (compile and run on a device),
`nncf_quantize.py` (INT8 by NNCF), `options.py` (`[backends.openvino]`)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "OpenVinoBackend": "nnship.backends.openvino.backend",
    "OpenVinoOptions": "nnship.backends.openvino.options",
    "OpenVinoRunner": "nnship.backends.openvino.runner",
    "check_bf16": "nnship.backends.openvino.runner",
}


def __getattr__(name: str) -> Any:
    """Import the runner and backend modules on first use: importing the options (the recipe
    does) must not import the runtime"s modules."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
