"""Backends: one module per runtime, imported lazily so `import nnship` never needs them."""

from __future__ import annotations

import importlib

from nnship.core import Backend
from nnship.errors import BackendError

# name -> (module, class). Modules are imported only when a backend is asked for.
_BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("nnship.backends.onnxruntime", "OnnxRuntimeBackend"),
    "openvino": ("nnship.backends.openvino", "OpenVinoBackend"),
    "tensorrt": ("nnship.backends.tensorrt", "TensorRtBackend"),
}

BACKEND_NAMES = tuple(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called `name` ("onnxruntime", "openvino", "tensorrt")."""
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}
    key = aliases.get(key, key)
    if key not in _BACKENDS:
        raise BackendError(f"Unknown backend '{name}'; choose one of {', '.join(BACKEND_NAMES)}")
    module_name, class_name = _BACKENDS[key]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)()
