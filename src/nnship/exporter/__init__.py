"""torch -> ONNX export: checks, shape inference, simplification and numerical verification
(see docs/export.md and docs/architecture.md).

Public: `export_onnx`, `ExportResult`, `ExportConfig`, `verify_onnx`, `VerificationResult`,
`verification_samples`. Importing this package (e.g. for `ExportConfig` in a recipe) does not
import torch; the export functions are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from nnship.exporter.config import ExportConfig

__all__ = [
    "ExportConfig",
    "ExportResult",
    "VerificationResult",
    "export_onnx",
    "verification_samples",
    "verify_onnx",
]

_LAZY = {
    "export_onnx": "nnship.exporter.export",
    "ExportResult": "nnship.exporter.export",
    "verify_onnx": "nnship.exporter.verify",
    "VerificationResult": "nnship.exporter.verify",
    "verification_samples": "nnship.exporter.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nnship.exporter' has no attribute {name!r}")
