"""Helpers the API functions share: opening data given as a path or as a `DataSource`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from torch import nn

    from nnship.core import DataSource, TensorSpec

DataArg = Union[str, Path, "DataSource"]
"""Data as a path/reference (`.npz`, `.npy`, image folder, `pkg.mod:fn`) or a `DataSource`."""
ModelArg = Union[str, Path, "nn.Module"]
"""A model source (`pkg.mod:factory`, `file.py:factory`, `.pt2`, `.onnx`, a pickle) or a module."""


def open_data_arg(
    data: DataArg, specs: Sequence[TensorSpec] | None, *, limit: int | None = None
) -> DataSource:
    """`data` as a `DataSource` checked against `specs` (a source passes through as is)."""
    from nnship.core import DataSource

    if isinstance(data, DataSource):
        return data
    from nnship.sources.data import open_data

    return open_data(data, input_specs=list(specs) if specs else None, limit=limit)


def onnx_specs(onnx_path: str | Path) -> list[TensorSpec]:
    """The input specs an ONNX file declares (weights not loaded)."""
    from nnship.onnx.graph import load_onnx, onnx_input_specs

    return onnx_input_specs(load_onnx(onnx_path, load_weights=False))
