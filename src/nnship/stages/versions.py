"""Versions that change what a stage produces (part of the stages' cache keys)."""

from __future__ import annotations

import nnship


def tool_versions() -> dict[str, str]:
    """nnship, torch, onnx and onnxruntime versions (a new exporter may emit other bytes)."""
    import onnx
    import onnxruntime
    import torch

    return {
        "nnship": nnship.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def dump(model: object) -> object:
    """A pydantic model as JSON-able data (anything else as it is)."""
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model
