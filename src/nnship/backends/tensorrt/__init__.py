"""TensorRT: `backend.py` (engine where a GPU is, build kit always), `runner.py`, `engine.py` (the
builder the kit runs on the device), `buildkit.py`, `check.py` + `ops.py` (will the parser take
it), `options.py` (`[backends.tensorrt]`)."""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

# The options are light (the recipe imports them); the runner and backend modules load on use.
__getattr__ = lazy_exports(
    __name__,
    {
        "TensorRtBackend": "nnship.backends.tensorrt.backend",
        "TensorRtOptions": "nnship.backends.tensorrt.options",
        "TensorRtRunner": "nnship.backends.tensorrt.runner",
        "resolve_options": "nnship.backends.tensorrt.backend",
        "tensorrt_unavailable_reason": "nnship.backends.tensorrt.backend",
    },
)
