"""Backends: one module per runtime, imported lazily so `import nnship` never needs them."""

from __future__ import annotations

import importlib
from typing import Any

from nnship.core import Backend
from nnship.core.errors import BackendError

# name -> (module, class). Modules are imported only when a backend is asked for.
_BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("nnship.backends.onnxruntime.backend", "OnnxRuntimeBackend"),
    "openvino": ("nnship.backends.openvino.backend", "OpenVinoBackend"),
    "tensorrt": ("nnship.backends.tensorrt.backend", "TensorRtBackend"),
}

BACKEND_NAMES = tuple(_BACKENDS)

BACKEND_ALIASES: dict[str, str] = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}
"""Short names accepted wherever a backend is named (CLI, recipe-scoped options)."""


def canonical_backend(name: str) -> str:
    """ "ov" -> "openvino", "TensorRT" -> "tensorrt", ... (unknown names raise BackendError)."""
    key = name.lower().replace("-", "").replace("_", "")
    key = BACKEND_ALIASES.get(key, key)
    if key not in _BACKENDS:
        raise BackendError(f"Unknown backend '{name}'; choose one of {', '.join(BACKEND_NAMES)}")
    return key


def _backend_class(name: str) -> type[Backend]:
    module_name, class_name = _BACKENDS[canonical_backend(name)]
    module = importlib.import_module(module_name)
    cls: type[Backend] = getattr(module, class_name)
    return cls


def get_backend(name: str) -> Backend:
    """The backend called `name` ("onnxruntime", "openvino", "tensorrt", or an alias)."""
    return _backend_class(name)()


def precisions_of(name: str) -> tuple[str, ...]:
    """The precisions backend `name` runs ("fp32" always; e.g. OpenVINO adds "int8", "fp16",
    "bf16"). Imports the backend's module, never its runtime."""
    return _backend_class(name).precisions


def check_precision_supported(name: str, precision: str, options: Any = None) -> None:
    """Raise `BackendError` unless backend `name` with `options` (its options model, default
    its defaults) runs `precision` on this machine (`Backend.check_precision_supported`)."""
    get_backend(name).check_precision_supported(precision, options)
