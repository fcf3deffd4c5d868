"""ONNX Runtime: `backend.py` (an ONNX file to an artifact), `runner.py` (run it), `options.py`
(`[backends.onnxruntime]`)."""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

# The options are light (the recipe imports them); the runner and backend modules load on use.
__getattr__ = lazy_exports(
    __name__,
    {
        "OnnxRuntimeBackend": "nnship.backends.onnxruntime.backend",
        "OnnxRuntimeOptions": "nnship.backends.onnxruntime.options",
        "OnnxRuntimeRunner": "nnship.backends.onnxruntime.runner",
        "resolve_providers": "nnship.backends.onnxruntime.runner",
    },
)
