"""Model sources and data sources (see docs/architecture.md and docs/sources.md).

- `load_model(source, ...) -> LoadedModel`, `save_pt2(module, example_inputs, path)`;
- `open_data(source, ...) -> DataSource`, `DataConfig` / `open_data_config` for recipes;
- `ImagePreprocess` / `ImageFolderData` for image folders; `ArrayData` for in-memory arrays.

The model names import torch, so they load on first use: `import nnship.sources` stays light.
"""

from typing import Any

from nnship.sources.arrays import ArrayData
from nnship.sources.data import DataConfig, DataKind, open_data, open_data_config
from nnship.sources.images import ImageFolderData, ImagePreprocess, preprocess_image

_MODEL_NAMES = ("LoadedModel", "load_model", "load_state_dict", "save_pt2")

__all__ = [
    "ArrayData",
    "DataConfig",
    "DataKind",
    "ImageFolderData",
    "ImagePreprocess",
    "LoadedModel",
    "load_model",
    "load_state_dict",
    "open_data",
    "open_data_config",
    "preprocess_image",
    "save_pt2",
]


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        from nnship.sources import models

        return getattr(models, name)
    raise AttributeError(f"module 'nnship.sources' has no attribute {name!r}")
