"""Backends and their artifacts: an ONNX model lowered for one runtime, loaded as a `Runner`."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from nnship.core.data import DataSource
from nnship.core.errors import BackendError
from nnship.core.runner import Runner

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
    precisions: tuple[str, ...] = ("fp32",)
    """The precisions (of `PRECISIONS`) this backend's artifacts run in; a build plans only
    these for it."""

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
        from nnship.core.fileio import ensure_writable_dir, sha256_file, write_json_atomic

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

    def check_precision_supported(self, precision: str, options: Any = None) -> None:
        """Raise `BackendError` unless this backend, with `options` (an `options_type`,
        default its defaults), can run `precision` artifacts on this machine.

        Template method: the base refuses a precision the backend never runs (not in
        `precisions`); a backend overrides `_check_precision_impl` for what depends on the
        machine (OpenVINO: bf16 needs a device with native bf16 arithmetic).
        """
        if precision not in self.precisions:
            raise BackendError(
                f"{self.name} does not run {precision} models; it runs {', '.join(self.precisions)}"
            )
        self._check_precision_impl(precision, self.resolve_options(options))

    def _check_precision_impl(self, precision: str, options: Any) -> None:
        """Machine-dependent checks of a precision the backend runs; none by default."""
        return None

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


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def resolve_backend_options(
    cls: type[OptionsT], backend: str, options: OptionsT | None = None, **overrides: Any
) -> OptionsT:
    """`options` (default `cls()`) with keyword overrides applied and validated.

    Overrides that are None are ignored, so CLI flags left unset keep the recipe's values.
    Raises `BackendError` naming the bad option as `[backends.<backend>] <field>: <reason>`.
    """
    base = (options or cls()).model_dump()
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(base)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or backend
        raise BackendError(f"[backends.{backend}] {field}: {first['msg']}") from exc
