"""Model sources and data sources (see docs/architecture.md and docs/sources.md).

- `load_model(source, ...) -> LoadedModel`, `save_pt2(module, example_inputs, path)`;
- `open_data(source, ...) -> DataSource`, `DataConfig` / `open_data_config` for recipes;
- `ImagePreprocess` / `ImageFolderData` for image folders; `ArrayData` for in-memory arrays.

The model names import torch, so they load on first use: `import nnship.sources` stays light.
"""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "ArrayData": "nnship.sources.arrays",
        "DataConfig": "nnship.sources.config",
        "DataKind": "nnship.sources.config",
        "ImageFolderData": "nnship.sources.images",
        "ImagePreprocess": "nnship.sources.config",
        "LoadedModel": "nnship.sources.models",
        "load_model": "nnship.sources.models",
        "load_state_dict": "nnship.sources.models",
        "open_data": "nnship.sources.data",
        "open_data_config": "nnship.sources.data",
        "preprocess_image": "nnship.sources.images",
        "save_pt2": "nnship.sources.models",
    },
)

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
