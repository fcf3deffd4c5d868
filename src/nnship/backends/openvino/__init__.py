"""OpenVINO: `backend.py` (ONNX to IR artifacts), `runner.py` (compile and run on a device),
`nncf_quantize.py` (INT8 by NNCF), `options.py` (`[backends.openvino]`)."""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

# The options are light (the recipe imports them); the runner and backend modules load on use.
__getattr__ = lazy_exports(
    __name__,
    {
        "OpenVinoBackend": "nnship.backends.openvino.backend",
        "OpenVinoOptions": "nnship.backends.openvino.options",
        "OpenVinoRunner": "nnship.backends.openvino.runner",
        "check_bf16": "nnship.backends.openvino.runner",
    },
)
