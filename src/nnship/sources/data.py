"""Data sources: open `.npy`, `.npz`, folders of them, image folders, callables and dicts as a
`DataSource` of named numpy batches, checked against the model's input specs.

See docs/sources.md for the formats and the casting rules (`nnship.sources.conform`).
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core import DataSource, LabeledBatch, TensorSpec
from nnship.core.errors import DataError
from nnship.core.fileio import sha256_file
from nnship.core.importing import looks_like_object_spec, resolve_object
from nnship.sources.arrays import ArrayData
from nnship.sources.config import DataConfig, DataKind, ImagePreprocess
from nnship.sources.conform import check_header, conform_batch, relax_batch_axis
from nnship.sources.images import ImageFolderData, has_images
from nnship.sources.streams import ArrayFolderData, CallableData, CheckedData, _chunk_of

__all__ = ["DataConfig", "DataKind", "FileArrayData", "open_data", "open_data_config"]


class FileArrayData(ArrayData):
    """Arrays read from `.npy`/`.npz` files; the fingerprint hashes the file bytes (cheap)."""

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        labels: np.ndarray | None,
        *,
        files: list[Path],
        extra: str,
    ) -> None:
        super().__init__(inputs, labels, name=", ".join(f"'{f}'" for f in files))
        self._files = files
        self._extra = extra

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self._extra.encode())
        for path in self._files:
            digest.update(sha256_file(path).encode())
        return digest.hexdigest()


def _finish_arrays(
    inputs: dict[str, np.ndarray],
    labels: np.ndarray | None,
    specs: Sequence[TensorSpec] | None,
    limit: int | None,
    where: str,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    if not inputs:
        raise DataError(f"{where} holds no input arrays")
    for name, value in inputs.items():
        if value.ndim == 0 or value.shape[0] == 0 or value.size == 0:
            raise DataError(f"{where}: array '{name}' is empty (shape {value.shape})")
    if specs:
        inputs = conform_batch(inputs, specs, where=where)
    if limit is not None:
        inputs = {k: v[:limit] for k, v in inputs.items()}
        labels = None if labels is None else labels[:limit]
    return inputs, labels


def _load_numpy(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"Data file '{path}' holds Python objects (pickled); nnship loads only plain "
                "numeric arrays. Save with np.save/np.savez from numeric arrays"
            ) from exc
        raise DataError(f"Data file '{path}' is corrupt or not a numpy file: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"Data file '{path}' is corrupt or not a numpy file: {exc}") from exc


def _open_npy(path: Path, specs: Sequence[TensorSpec] | None, limit: int | None) -> DataSource:
    if specs and len(specs) > 1:
        raise DataError(
            f"Data file '{path}' is a .npy (one array) but the model has inputs "
            f"{[s.name for s in specs]}; use a .npz keyed by input name "
            "(np.savez(path, **{name: array}))"
        )
    name = specs[0].name if specs else "input"
    array = _load_numpy(path)
    if not isinstance(array, np.ndarray):  # np.load returns an NpzFile for zip bytes
        raise DataError(f"Data file '{path}' is a .npz archive, not a .npy; rename it")
    inputs, labels = _finish_arrays({name: array}, None, specs, limit, f"'{path}'")
    return FileArrayData(inputs, labels, files=[path], extra=f"npy\0{name}\0{limit}")


def _open_npz(
    path: Path, specs: Sequence[TensorSpec] | None, labels_key: str, limit: int | None
) -> DataSource:
    archive = _load_numpy(path)
    if isinstance(archive, np.ndarray):
        raise DataError(f"Data file '{path}' is a .npy array, not a .npz archive; rename it")
    try:
        with archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"Data file '{path}' is a corrupt .npz archive: {exc}") from exc
    if not arrays:
        raise DataError(f"Data file '{path}' is empty (holds no arrays)")
    labels = arrays.pop(labels_key, None)
    inputs, labels = _finish_arrays(arrays, labels, specs, limit, f"'{path}'")
    return FileArrayData(inputs, labels, files=[path], extra=f"npz\0{labels_key}\0{limit}")


def _image_input_name(preprocess: ImagePreprocess, specs: Sequence[TensorSpec] | None) -> str:
    if preprocess.input_name:
        return preprocess.input_name
    if not specs:
        return "input"
    if len(specs) > 1:
        raise DataError(
            f"An image folder feeds one input but the model has inputs {[s.name for s in specs]}"
        )
    return specs[0].name


def _open_images(
    root: Path,
    preprocess: ImagePreprocess | None,
    specs: Sequence[TensorSpec] | None,
    limit: int | None,
) -> DataSource:
    preprocess = preprocess or ImagePreprocess()
    name = _image_input_name(preprocess, specs)
    source = ImageFolderData(root, preprocess, input_name=name, limit=limit)
    if not specs:
        return source
    spec = next((s for s in specs if s.name == name), None)
    if spec is None or len(specs) != 1:
        raise DataError(
            f"Image folder '{root}' feeds input '{name}' but the model has inputs "
            f"{[s.name for s in specs]}; set image.input_name to one of them"
        )
    # Check the preprocessed shape against the spec now, before decoding anything.
    fixed = relax_batch_axis(spec).shape[1:]
    sample = tuple(
        d if d is not None else (w if isinstance(w, int) and w > 0 else 1)
        for d, w in zip(preprocess.sample_shape(), (*fixed, *([None] * 3)))
    )
    try:
        check_header(spec, (1, *sample), np.dtype("float32"), where=f"image folder '{root}'")
    except DataError as exc:
        raise DataError(
            f"{exc}. Image preprocessing gives {preprocess.layout} float32 with "
            f"{preprocess.channels} channel(s) ({preprocess.channel_order}); adjust "
            "center_crop, layout or channel_order"
        ) from exc
    return CheckedData(source, specs)


def _open_callable(
    fn: Callable[[], Any],
    name: str,
    specs: Sequence[TensorSpec] | None,
    labels_key: str,
    limit: int | None,
) -> DataSource:
    try:
        result = fn()
    except Exception as exc:
        raise DataError(f"Data callable '{name}' raised {type(exc).__name__}: {exc}") from exc
    return _open_result(result, fn, f"data callable '{name}'", specs, labels_key, limit)


def _open_result(
    result: Any,
    fn: Callable[[], Any] | None,
    where: str,
    specs: Sequence[TensorSpec] | None,
    labels_key: str,
    limit: int | None,
) -> DataSource:
    if isinstance(result, DataSource):
        return CheckedData(result, specs, limit)
    if isinstance(result, (Mapping, LabeledBatch)) or (
        isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping)
    ):
        inputs, labels = _chunk_of(result, labels_key, where)
        inputs = {k: np.asarray(v) for k, v in inputs.items()}
        inputs, labels = _finish_arrays(inputs, labels, specs, limit, where)
        return ArrayData(inputs, labels, name=where)
    iterable = isinstance(result, Iterable) and not isinstance(result, (str, bytes, np.ndarray))
    if iterable and fn is not None:
        return CallableData(fn, where, specs=specs, labels_key=labels_key, limit=limit)
    raise DataError(
        f"{where} is a {type(result).__name__}; expected a dict of arrays "
        f"(optionally with '{labels_key}') or an iterable of such batches"
    )


def _detect_kind(path: Path, image: ImagePreprocess | None) -> DataKind:
    if path.is_dir():
        numeric = any(p.suffix.lower() in (".npy", ".npz") for p in path.iterdir())
        if image is not None or (not numeric and has_images(path)):
            return "images"
        if numeric:
            return "folder"
        raise DataError(f"Data folder '{path}' holds no .npy/.npz files and no images")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return "npy" if suffix == ".npy" else "npz"
    raise DataError(
        f"Data file '{path}' has an unsupported type '{suffix}': use .npy, .npz, a folder of "
        "them, an image folder, or 'package.module:callable'"
    )


def open_data(
    source: str | Path | Mapping[str, Any] | Callable[[], Any] | DataSource,
    *,
    input_specs: Sequence[TensorSpec] | None = None,
    labels_key: str = "labels",
    image: ImagePreprocess | None = None,
    limit: int | None = None,
    kind: DataKind = "auto",
    base_dir: Path | str | None = None,
) -> DataSource:
    """Open a data source as a `DataSource` of batches of named numpy arrays.

    `source`: a `.npy` (the single input), a `.npz` keyed by input name (labels under
    `labels_key`, default "labels"), a folder of `.npy`/`.npz` files, an image folder
    (preprocessed by `image`, default `ImagePreprocess()`), a `package.module:callable` /
    `file.py:callable` string, a callable, a dict of arrays, or a `DataSource`.
    With `input_specs`, every batch is conformed and checked against them (names, rank, fixed
    dims, dtype, NaN/Inf; axis 0 is free): files and dicts at once, folders and callables as
    they stream. `limit`: at most this many samples (default all). `kind` forces the format
    (default "auto": detect). Relative paths resolve against `base_dir` (default: the working
    directory). Raises `DataError` naming the file and tensor at fault.
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of samples, got {limit}")
    specs = list(input_specs) if input_specs else None
    if isinstance(source, DataSource):
        return CheckedData(source, specs, limit) if specs or limit else source
    if isinstance(source, Mapping):
        return _open_result(source, None, "data dict", specs, labels_key, limit)
    if callable(source):
        name = getattr(source, "__qualname__", type(source).__name__)
        return _open_callable(source, name, specs, labels_key, limit)
    text = str(source)
    base = Path(base_dir) if base_dir is not None else None
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    if kind == "callable" or (
        kind == "auto" and not path.exists() and looks_like_object_spec(text)
    ):
        fn, _ = resolve_object(text, what="Data callable", error=DataError, base_dir=base)
        if not callable(fn):
            raise DataError(f"Data callable '{text}' is a {type(fn).__name__}, not a callable")
        return _open_callable(fn, text, specs, labels_key, limit)
    if not path.exists():
        raise DataError(f"Data path '{path}' does not exist")
    kind = _detect_kind(path, image) if kind == "auto" else kind
    if kind == "npy":
        return _open_npy(path, specs, limit)
    if kind == "npz":
        return _open_npz(path, specs, labels_key, limit)
    if not path.is_dir():
        raise DataError(f"Data kind '{kind}' needs a folder, but '{path}' is a file")
    if kind == "images":
        return _open_images(path, image, specs, limit)
    return ArrayFolderData(path, specs=specs, labels_key=labels_key, limit=limit)


def open_data_config(
    cfg: DataConfig,
    input_specs: Sequence[TensorSpec] | None = None,
    base_dir: Path | str | None = None,
) -> DataSource:
    """Open a recipe's data section; relative paths resolve against `base_dir` (the recipe's
    folder; default: the working directory)."""
    return open_data(
        cfg.path,
        input_specs=input_specs,
        labels_key=cfg.labels_key,
        image=cfg.image,
        limit=cfg.limit,
        kind=cfg.kind,
        base_dir=base_dir,
    )
