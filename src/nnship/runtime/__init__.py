"""The device-side runtime of nnship bundles: load a verified bundle and run it.

Imports only the standard library and numpy; the runtime it drives (onnxruntime or openvino)
is imported when a session opens. Ships in the full `nnship` package and, alone, as the
`nnship-runtime` distribution (runtime/ in the repository) for devices without torch.

    from nnship.runtime import Bundle
    model = Bundle.load("dist/resnet").session()      # target="auto"
    print(model.input_names, model.output_names, model.target)
    logits = model.run({"x": batch})["logits"]
"""

from __future__ import annotations

from .bundle import Bundle, OutputCheck, SmokeTestResult
from .errors import BundleError
from .manifest import SCHEMA_VERSION, ArtifactInfo, Preprocessing, TensorInfo
from .session import Session
from .targets import installed_runtimes

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactInfo",
    "Bundle",
    "BundleError",
    "OutputCheck",
    "Preprocessing",
    "Session",
    "SmokeTestResult",
    "TensorInfo",
    "installed_runtimes",
]
