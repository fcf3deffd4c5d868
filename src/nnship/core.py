"""The few core types every stage shares: TensorSpec, Batch, Runner, DataSource, Artifact, Backend.

The torch float baseline and every backend are `Runner`s, so validation, calibration and
benchmarking never special-case a backend.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nnship.errors import DataError

Dim = int | str
"""A dimension: a fixed size, or a symbolic name such as "batch" that accepts any size."""

Batch = dict[str, np.ndarray]
"""Named input (or output) arrays; the first axis is the batch axis."""

_DTYPE_ALIASES = {
    "float": "float32",
    "fp32": "float32",
    "f32": "float32",
    "half": "float16",
    "fp16": "float16",
    "f16": "float16",
    "double": "float64",
    "int": "int64",
    "long": "int64",
    "i64": "int64",
    "i32": "int32",
    "uint8": "uint8",
    "u8": "uint8",
    "bool": "bool",
}


def normalize_dtype(dtype: str | np.dtype | type) -> str:
    """Canonical numpy dtype name ("float32", "int64", ...) for user spellings and numpy dtypes."""
    if isinstance(dtype, str):
        dtype = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    try:
        return np.dtype(dtype).name
    except TypeError as exc:
        raise DataError(f"Unknown dtype '{dtype}'") from exc


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output. Symbolic dims are strings."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def concrete_shape(self, symbolic: int = 1) -> tuple[int, ...]:
        """The shape with every symbolic dim replaced by `symbolic`."""
        return tuple(d if isinstance(d, int) else symbolic for d in self.shape)

    def check(self, array: np.ndarray, *, where: str = "") -> None:
        """Raise `DataError` naming the tensor and both shapes if `array` does not fit this spec.

        Symbolic dims accept any size; a fixed dim of -1 or 0 (unknown) accepts any size too.
        """
        at = f" in {where}" if where else ""
        arr = np.asarray(array)
        if arr.ndim != len(self.shape):
            raise DataError(
                f"Input '{self.name}'{at}: expected rank {len(self.shape)} shape {self.shape_str()}, "
                f"got rank {arr.ndim} shape {tuple(arr.shape)}"
            )
        for axis, (want, got) in enumerate(zip(self.shape, arr.shape)):
            if isinstance(want, int) and want > 0 and want != got:
                raise DataError(
                    f"Input '{self.name}'{at}: expected shape {self.shape_str()}, got "
                    f"{tuple(arr.shape)} (axis {axis} is {got}, expected {want})"
                )
        if arr.dtype.name != self.dtype:
            raise DataError(
                f"Input '{self.name}'{at}: expected dtype {self.dtype}, got {arr.dtype.name}"
            )

    def shape_str(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(data["name"], tuple(data["shape"]), data.get("dtype", "float32"))

    @classmethod
    def parse(cls, text: str) -> TensorSpec:
        """Parse the CLI form `NAME:SHAPE[:DTYPE]`, e.g. `x:1x3x224x224` or `ids:1x128:int64`.

        The shape is kept concrete (it is the example shape); exporters mark axis 0 dynamic.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise DataError(
                f"Bad --input '{text}': expected NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224 or "
                "input_ids:1x128:int64"
            )
        try:
            dims = [int(d) for d in parts[1].lower().split("x")]
        except ValueError as exc:
            raise DataError(
                f"Bad --input '{text}': shape '{parts[1]}' must be integers joined by 'x'"
            ) from exc
        if any(d <= 0 for d in dims):
            raise DataError(f"Bad --input '{text}': every dimension must be positive")
        dtype = parts[2] if len(parts) == 3 else "float32"
        return cls(parts[0], tuple(dims), dtype)

    def example(self, batch: int = 1, seed: int = 0) -> np.ndarray:
        """A deterministic example array: axis 0 has size `batch`, other symbolic dims 1.

        Floats are standard normal; integers are small non-negative ids (0..9); bools are True.
        """
        shape = self.concrete_shape()
        if shape:  # axis 0 is the batch axis, whatever the example shape says
            shape = (batch, *shape[1:])
        rng = np.random.default_rng(seed)
        kind = np.dtype(self.dtype).kind
        if kind == "f":
            return rng.standard_normal(shape).astype(self.dtype)
        if kind in "iu":
            return rng.integers(0, 10, size=shape).astype(self.dtype)
        if kind == "b":
            return np.ones(shape, dtype=bool)
        raise DataError(f"Input '{self.name}': cannot make example data of dtype {self.dtype}")


def example_batch(specs: Sequence[TensorSpec], batch: int = 1, seed: int = 0) -> Batch:
    """Deterministic example inputs for every spec (see `TensorSpec.example`).

    Integer inputs whose name mentions "mask" get all ones, so attention masks are valid.
    """
    out: Batch = {}
    for i, spec in enumerate(specs):
        arr = spec.example(batch, seed + i)
        if "mask" in spec.name.lower() and np.dtype(spec.dtype).kind in "iub":
            arr = np.ones_like(arr)
        out[spec.name] = arr
    return out


def check_batch(specs: Sequence[TensorSpec], batch: Batch, *, where: str = "") -> None:
    """Raise `DataError` unless `batch` has exactly the inputs in `specs`, each fitting its spec,
    with finite values."""
    check_input_names(specs, list(batch), where=where)
    for spec in specs:
        spec.check(batch[spec.name], where=where)
        check_finite(spec.name, batch[spec.name], where=where)


def check_input_names(
    specs: Sequence[TensorSpec], names: Sequence[str], *, where: str = ""
) -> None:
    """Raise `DataError` unless `names` are exactly the spec names (any order), listing the
    missing and unexpected ones."""
    at = f" in {where}" if where else ""
    want = [s.name for s in specs]
    missing = [n for n in want if n not in names]
    extra = [n for n in names if n not in want]
    if missing or extra:
        raise DataError(
            f"Inputs{at} do not match the model: model expects {want}, data has {list(names)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )


def check_finite(name: str, array: np.ndarray, *, where: str = "") -> None:
    """Raise `DataError` naming the tensor if `array` holds NaN or Inf."""
    arr = np.asarray(array)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        at = f" in {where}" if where else ""
        raise DataError(f"Tensor '{name}'{at} holds {bad} NaN/Inf value(s); clean the data first")


class LabeledBatch(NamedTuple):
    """A batch of inputs and, beside it, optional labels (class ids, first axis = batch)."""

    inputs: Batch
    labels: np.ndarray | None = None


class DataSource(abc.ABC):
    """A finite, re-iterable source of batches of named numpy arrays.

    Sources stream: they never need to hold all samples in memory (image folders don't).
    """

    @property
    @abc.abstractmethod
    def num_samples(self) -> int:
        """Number of samples (first-axis rows) in the whole source."""

    @property
    @abc.abstractmethod
    def input_names(self) -> list[str]:
        """Names of the input arrays each batch holds."""

    @property
    def has_labels(self) -> bool:
        return False

    @abc.abstractmethod
    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        """Yield batches of at most `batch_size` samples, in a fixed order."""

    def describe(self) -> str:
        """A short human description (path and sample count) used in messages and reports."""
        return f"{type(self).__name__}({self.num_samples} samples)"

    def fingerprint(self) -> str:
        """A hash of the data's content, for reports and reproducibility. Subclasses may cache."""
        import hashlib

        digest = hashlib.sha256()
        for item in self.iter_batches(64):
            for name in sorted(item.inputs):
                arr = np.ascontiguousarray(item.inputs[name])
                digest.update(name.encode())
                digest.update(str(arr.dtype).encode())
                digest.update(str(arr.shape).encode())
                digest.update(arr.tobytes())
            if item.labels is not None:
                digest.update(np.ascontiguousarray(item.labels).tobytes())
        return digest.hexdigest()


class Runner(abc.ABC):
    """Runs a model on named numpy inputs. One interface for torch and every backend.

    Template method: `run` owns the guards (input names/shapes/dtypes checked against
    `input_specs`, NaN/Inf rejected) and the error messages; a backend overrides only
    `_run_impl` (and `_close_impl` if it holds resources).
    """

    name: str = "runner"
    """Short label such as "torch", "onnxruntime:cpu", "openvino:CPU"."""

    @property
    @abc.abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """Declared inputs; symbolic dims accept any size."""

    @property
    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """Names of the outputs `run` returns, in model order."""

    @abc.abstractmethod
    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        """Backend-specific execution on checked inputs."""

    def run(self, batch: Batch, *, check: bool = True) -> dict[str, np.ndarray]:
        """Run the model on `batch`; returns outputs by name as numpy arrays.

        `check=False` skips input validation (latency loops validate once, then time without it).
        """
        if getattr(self, "_closed", False):
            from nnship.errors import BackendError

            raise BackendError(f"Runner {self.name} is closed; open the artifact again to run it")
        if check:
            check_batch(self.input_specs, batch, where=f"inputs to {self.name}")
        return self._run_impl(batch)

    @property
    def closed(self) -> bool:
        """True after `close()`; `run` then raises `BackendError`."""
        return bool(getattr(self, "_closed", False))

    def close(self) -> None:
        """Release sessions/engines. Idempotent."""
        if getattr(self, "_closed", False):
            return
        self._close_impl()
        self._closed = True

    def _close_impl(self) -> None:
        return None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PRECISIONS = ("fp32", "fp16", "bf16", "int8", "dynamic-int8")


@dataclass
class Artifact:
    """What a backend produced: its files, target, precision and the hashes of its inputs."""

    path: Path
    """The primary file or directory a runner loads (an .onnx, an IR .xml, an engine, a kit dir)."""
    backend: str
    precision: str = "fp32"
    device: str = "cpu"
    files: list[Path] = field(default_factory=list)
    source_hashes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Row label in reports, e.g. "onnxruntime/int8"."""
        return f"{self.backend}/{self.precision}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "backend": self.backend,
            "precision": self.precision,
            "device": self.device,
            "files": [str(f) for f in self.files],
            "source_hashes": dict(self.source_hashes),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            path=Path(data["path"]),
            backend=data["backend"],
            precision=data.get("precision", "fp32"),
            device=data.get("device", "cpu"),
            files=[Path(f) for f in data.get("files", [])],
            source_hashes=dict(data.get("source_hashes", {})),
            metadata=dict(data.get("metadata", {})),
        )


@dataclass(frozen=True)
class CompileInputs:
    """What a compile may need besides the ONNX and the options: calibration data and the
    nodes to keep in float (ONNX node names, op types, regexes on names). Used by OpenVINO
    INT8 through NNCF; other backends ignore them."""

    calib_data: DataSource | None = None
    exclude_names: tuple[str, ...] = ()
    exclude_op_types: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()


class Backend(abc.ABC):
    """Lowers an ONNX model to a backend artifact and loads artifacts as `Runner`s.

    Template method, like `Runner.run`: `compile` owns the guards (the ONNX file exists, the
    precision is known, the options validate against the backend's typed `options_type`, the
    output folder is writable, a stale completion marker is removed first so an interrupted
    compile never looks finished) and the artifact's bookkeeping (hash of the input, nnship
    version, the completion marker `artifact_file` written last); a backend overrides only
    `_compile_impl`. One module per backend under `nnship.backends`; optional runtimes are
    imported lazily.
    """

    name: str = "backend"
    options_type: type[Any]
    """The backend's pydantic options model (`OnnxRuntimeOptions`, `OpenVinoOptions`, ...)."""
    artifact_file: str | None = None
    """The file written last into the output folder marking it complete (None: none)."""

    def compile(
        self,
        onnx_path: Path | str,
        out_dir: Path | str,
        options: Any = None,
        *,
        precision: str | None = None,
        calib_data: DataSource | None = None,
        exclude_names: Sequence[str] = (),
        exclude_op_types: Sequence[str] = (),
        exclude_patterns: Sequence[str] = (),
        **overrides: Any,
    ) -> Artifact:
        """Produce an artifact for `onnx_path` under `out_dir` and return it.

        `options` is the backend's options model (default: its defaults); keyword
        `overrides` replace single fields of it (`threads=2`, `device="GPU"`; None keeps the
        value) and are validated the same way, so an unknown or bad option is a `BackendError`
        naming it. `precision` None lets the backend decide (most detect it from the ONNX).
        """
        from nnship.errors import BackendError
        from nnship.fileio import ensure_writable_dir, sha256_file, write_json_atomic

        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise BackendError(f"ONNX model '{onnx_path}' does not exist")
        if precision is not None and precision not in PRECISIONS:
            raise BackendError(
                f"Unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}"
            )
        opts = self.resolve_options(options, **overrides)
        out = ensure_writable_dir(Path(out_dir))
        marker = out / self.artifact_file if self.artifact_file else None
        if marker is not None:
            marker.unlink(missing_ok=True)
        inputs = CompileInputs(
            calib_data, tuple(exclude_names), tuple(exclude_op_types), tuple(exclude_patterns)
        )
        artifact = self._compile_impl(onnx_path, out, opts, precision=precision, inputs=inputs)
        if not artifact.source_hashes:
            artifact.source_hashes = {str(onnx_path): sha256_file(onnx_path)}
        import nnship

        artifact.metadata.setdefault("nnship_version", nnship.__version__)
        if marker is not None:
            if marker not in artifact.files:
                artifact.files.append(marker)
            write_json_atomic(marker, artifact.to_dict())
        return artifact

    def resolve_options(self, options: Any = None, **overrides: Any) -> Any:
        """`options` (an `options_type`, default its defaults) with non-None `overrides`
        applied and validated; raises `BackendError` naming an unknown or bad option."""
        from nnship.backends.config import resolve_backend_options
        from nnship.errors import BackendError

        if options is not None and not isinstance(options, self.options_type):
            raise BackendError(
                f"{self.name} options must be {self.options_type.__name__}, "
                f"not {type(options).__name__}"
            )
        known = list(self.options_type.model_fields)
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise BackendError(f"Unknown {self.name} option(s) {unknown}; known: {known}")
        return resolve_backend_options(self.options_type, self.name, options, **overrides)

    @abc.abstractmethod
    def _compile_impl(
        self,
        onnx_path: Path,
        out_dir: Path,
        options: Any,
        *,
        precision: str | None,
        inputs: CompileInputs,
    ) -> Artifact:
        """Backend-specific compile of a checked ONNX into an existing `out_dir`, with
        validated `options` (an `options_type`)."""

    @abc.abstractmethod
    def load(self, artifact: Artifact | Path, **options: Any) -> Runner:
        """Open an artifact (or a path to one) as a Runner."""
