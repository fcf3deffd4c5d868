"""Reads `manifest.json` (contract B of docs/bundle.md) with the standard library only.

The build side validates the same file with pydantic (`nnship.bundle.manifest.Manifest`); the
device side must not need pydantic, so this module checks just what the runtime relies on:
the structure and types of the fields it reads, and the schema version. Every problem names the
field as a path (`artifacts[1].runtime.min_version`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import BundleError

SCHEMA_VERSION = 1
"""The newest manifest schema this runtime reads."""
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TensorInfo:
    """One declared input or output: symbolic dims are strings ("batch"), unknown ones None."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ArtifactInfo:
    """One artifact of the bundle; `id` is "<backend>/<precision>"."""

    id: str
    backend: str
    precision: str
    device: str | None
    runtime_package: str
    min_version: str | None
    entry: str
    files: tuple[FileEntry, ...]
    expected: str | None
    tolerance: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] | None = None


@dataclass(frozen=True)
class Preprocessing:
    """How a raw image becomes the model input (see `nnship.runtime.preprocess`).
    `resize` and `crop` are (height, width)."""

    input: str
    resize: tuple[int, int] | None
    crop: tuple[int, int] | None
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str
    color: str


@dataclass(frozen=True)
class ManifestInfo:
    raw: dict[str, Any]
    schema_version: int
    name: str
    model_version: str | None
    nnship_version: str | None
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    preprocessing: Preprocessing | None
    labels: tuple[str, ...] | None
    artifacts: tuple[ArtifactInfo, ...]
    samples_inputs: str | None
    files: tuple[FileEntry, ...]


def _fail(where: str, what: str) -> BundleError:
    return BundleError(f"{MANIFEST}: {where}: {what}")


def _get(obj: dict, key: str, where: str, kind: type | tuple[type, ...], *, optional=False):
    path = f"{where}.{key}" if where else key
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise _fail(path, "missing")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int subclass; a JSON `true` is never a size or a version
    if isinstance(value, bool) and bool not in kinds:
        raise _fail(path, f"expected {_kind_name(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise _fail(path, f"expected {_kind_name(kinds)}, got {type(value).__name__} {value!r}")
    return value


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer",
             float: "a number", bool: "true/false"}  # fmt: skip
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _relpath(value: str, where: str) -> str:
    """A path inside the bundle: relative, POSIX, no `..` (a manifest never points outside)."""
    p = PurePosixPath(value)
    if not value or p.is_absolute() or "\\" in value or ".." in p.parts or ":" in p.parts[0]:
        raise _fail(where, f"{value!r} is not a relative path inside the bundle")
    return str(p)


def _files(items: list, where: str) -> tuple[FileEntry, ...]:
    out = []
    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _fail(w, "expected an object with path, sha256, size")
        sha = _get(item, "sha256", w, str).lower().removeprefix("sha256:")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise _fail(f"{w}.sha256", f"{sha!r} is not a SHA-256 hex digest")
        size = _get(item, "size", w, int)
        if size < 0:
            raise _fail(f"{w}.size", f"negative size {size}")
        out.append(FileEntry(_relpath(_get(item, "path", w, str), f"{w}.path"), sha, size))
    return tuple(out)


def _tensors(items: list, where: str) -> tuple[TensorInfo, ...]:
    import numpy as np

    out = []
    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _fail(w, "expected an object with name, shape, dtype")
        dims = []
        for j, d in enumerate(_get(item, "shape", w, list)):
            if not (d is None or isinstance(d, str) or (isinstance(d, int) and d >= 0)):
                raise _fail(f"{w}.shape[{j}]", f"expected a size, a name or null, got {d!r}")
            dims.append(d)
        dtype = _get(item, "dtype", w, str)
        try:
            np.dtype(dtype)
        except TypeError:
            raise _fail(f"{w}.dtype", f"unknown dtype {dtype!r}") from None
        out.append(TensorInfo(_get(item, "name", w, str), tuple(dims), dtype))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise _fail(where, f"duplicate tensor names {names}")
    return tuple(out)


def _pair(pp: dict, key: str) -> tuple[int, int] | None:
    value = _get(pp, key, "preprocessing", list, optional=True)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                  for v in value):  # fmt: skip
        raise _fail(
            f"preprocessing.{key}", f"expected [height, width] of positive integers, got {value}"
        )
    return (value[0], value[1])


def _numbers(pp: dict, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
    value = pp.get(key)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    ):
        raise _fail(f"preprocessing.{key}", f"expected a list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _preprocessing(pp: dict, inputs: tuple[TensorInfo, ...]) -> Preprocessing:
    names = [t.name for t in inputs]
    name = _get(pp, "input", "preprocessing", str, optional=True)
    if name is None:
        if len(names) != 1:
            raise _fail("preprocessing.input", f"missing; the model has inputs {names}")
        name = names[0]
    if name not in names:
        raise _fail("preprocessing.input", f"{name!r} is not an input of the model {names}")
    layout = _get(pp, "layout", "preprocessing", str, optional=True) or "NCHW"
    color = _get(pp, "color", "preprocessing", str, optional=True) or "RGB"
    if layout not in ("NCHW", "NHWC"):
        raise _fail("preprocessing.layout", f"{layout!r}, expected NCHW or NHWC")
    if color not in ("RGB", "BGR", "GRAY"):
        raise _fail("preprocessing.color", f"{color!r}, expected RGB, BGR or GRAY")
    scale = pp.get("scale")
    if scale is None:
        scale = 1.0 / 255.0  # the writer's default (nnship.bundle.manifest.Preprocessing)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise _fail("preprocessing.scale", f"expected a number, got {scale!r}")
    std = _numbers(pp, "std", (1.0,))
    if any(s == 0 for s in std):
        raise _fail("preprocessing.std", f"zero in {list(std)}")
    channels = 1 if color == "GRAY" else 3
    mean = _numbers(pp, "mean", (0.0,))
    for key, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise _fail(
                f"preprocessing.{key}", f"{len(values)} values for {channels} channel(s) ({color})"
            )
    return Preprocessing(name, _pair(pp, "resize"), _pair(pp, "crop"), float(scale), mean, std,
                         layout, color)  # fmt: skip


def _artifact(item: dict, where: str) -> ArtifactInfo:
    if not isinstance(item, dict):
        raise _fail(where, "expected an object")
    art_id = _get(item, "id", where, str)
    backend = _get(item, "backend", where, str)
    precision = _get(item, "precision", where, str)
    runtime = _get(item, "runtime", where, dict, optional=True) or {}
    package = _get(runtime, "package", f"{where}.runtime", str, optional=True) or backend
    min_version = _get(runtime, "min_version", f"{where}.runtime", str, optional=True)
    files = _files(_get(item, "files", where, list), f"{where}.files")
    entry = _relpath(_get(item, "entry", where, str), f"{where}.entry")
    if entry not in {f.path for f in files}:
        raise _fail(f"{where}.entry", f"{entry!r} is not among the artifact's files")
    tolerance = {}
    for key, value in (_get(item, "tolerance", where, dict, optional=True) or {}).items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(f"{where}.tolerance.{key}", f"expected a number, got {value!r}")
        tolerance[key] = float(value)
    expected = _get(item, "expected", where, str, optional=True)
    return ArtifactInfo(
        id=art_id, backend=backend, precision=precision,
        device=_get(item, "device", where, str, optional=True),
        runtime_package=package, min_version=min_version, entry=entry, files=files,
        expected=_relpath(expected, f"{where}.expected") if expected else None,
        tolerance=tolerance, validation=_get(item, "validation", where, dict, optional=True),
    )  # fmt: skip


def parse_manifest(raw: Any) -> ManifestInfo:
    """The runtime's view of a parsed `manifest.json`; a `BundleError` names the first bad field."""
    if not isinstance(raw, dict):
        raise BundleError(f"{MANIFEST}: expected a JSON object, got {type(raw).__name__}")
    version = _get(raw, "schema_version", "", int)
    if version > SCHEMA_VERSION:
        raise _fail("schema_version", f"{version} is newer than this runtime reads "
                    f"({SCHEMA_VERSION}); the bundle was written by a newer nnship "
                    f"({raw.get('nnship_version')}): upgrade nnship-runtime")  # fmt: skip
    if version < 1:
        raise _fail("schema_version", f"unknown version {version}")
    inputs = _tensors(_get(raw, "inputs", "", list), "inputs")
    outputs = _tensors(_get(raw, "outputs", "", list), "outputs")
    if not inputs or not outputs:
        raise _fail("inputs" if not inputs else "outputs", "empty")
    pp = _get(raw, "preprocessing", "", dict, optional=True)
    labels = _get(raw, "labels", "", list, optional=True)
    if labels is not None and not all(isinstance(x, str) for x in labels):
        raise _fail("labels", "expected a list of strings")
    arts = _get(raw, "artifacts", "", list)
    if not arts:
        raise _fail("artifacts", "the bundle holds no artifact")
    artifacts = tuple(_artifact(a, f"artifacts[{i}]") for i, a in enumerate(arts))
    ids = [a.id for a in artifacts]
    if len(set(ids)) != len(ids):
        raise _fail("artifacts", f"duplicate ids {ids}")
    samples = _get(raw, "samples", "", dict, optional=True) or {}
    sample_inputs = _get(samples, "inputs", "samples", str, optional=True)
    files = _files(_get(raw, "files", "", list), "files")
    listed = {f.path for f in files}
    for i, art in enumerate(artifacts):
        paths = [f.path for f in art.files] + ([art.expected] if art.expected else [])
        for path in paths:
            if path not in listed:
                raise _fail(f"artifacts[{i}]", f"{path!r} is not in the bundle's files list")
    if sample_inputs and _relpath(sample_inputs, "samples.inputs") not in listed:
        raise _fail("samples.inputs", f"{sample_inputs!r} is not in the bundle's files list")
    return ManifestInfo(
        raw=raw, schema_version=version, name=_get(raw, "name", "", str),
        model_version=_get(raw, "model_version", "", str, optional=True),
        nnship_version=_get(raw, "nnship_version", "", str, optional=True),
        inputs=inputs, outputs=outputs,
        preprocessing=_preprocessing(pp, inputs) if pp else None,
        labels=tuple(labels) if labels is not None else None, artifacts=artifacts,
        samples_inputs=sample_inputs, files=files,
    )  # fmt: skip


def read_manifest(root: Path) -> ManifestInfo:
    path = root / MANIFEST
    if not root.exists():
        raise BundleError(f"{root}: no such bundle folder")
    if not root.is_dir():
        hint = " (extract the archive first)" if root.name.endswith((".tar.gz", ".tgz")) else ""
        raise BundleError(f"{root}: not a bundle folder{hint}")
    if not path.is_file():
        raise BundleError(
            f"{path}: missing; {root} is not a bundle (or one whose writing did not finish)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_manifest(raw)
