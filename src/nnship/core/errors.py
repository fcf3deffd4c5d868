"""Errors a user can cause. Each message names the input at fault and what to do.

The CLI turns any `NnshipError` into one line on stderr and exit code 2
(`GateFailed` is exit code 1); any other exception is a bug and shows a traceback
only with `--debug`.
"""

from __future__ import annotations

from types import ModuleType


class NnshipError(Exception):
    """Base of every error caused by user input. Exit code 2."""

    exit_code = 2


class RecipeError(NnshipError):
    """The recipe file is malformed: unknown key, wrong type, missing file."""


class ModelSourceError(NnshipError):
    """A model source cannot be loaded (bad factory, unreadable file, pickle without opt-in)."""


class DataError(NnshipError):
    """Data does not match the model or is unusable (names, shapes, dtypes, NaN/Inf, empty)."""


class ExportError(NnshipError):
    """Export to ONNX failed or the exported model disagrees with torch."""


class OnnxModelError(NnshipError):
    """An ONNX file is missing, truncated, invalid or unsuitable for the asked operation."""


class CalibrationError(NnshipError):
    """Calibration statistics cannot be collected or are unusable."""


class QuantizationError(NnshipError):
    """Quantization cannot be done as asked."""


class CompressionError(NnshipError):
    """Pruning or distillation cannot be done as asked."""


class BackendError(NnshipError):
    """A backend cannot compile or run an artifact (unknown device, parser rejection...)."""


class MissingDependencyError(NnshipError):
    """An optional package is not installed; the message names the pip extra."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"'{package}' is required{what} but is not installed. "
            f"Install it with: pip install 'nnship[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ReportError(NnshipError):
    """A report file is corrupt, of another schema version, or not comparable."""


class OutputPathError(NnshipError):
    """An output path cannot be written."""


class BundleError(NnshipError):
    """A bundle (or the build folder it is made from) is incomplete, tampered with, or of a
    newer schema; the message names the file or field. Exit code 2."""


class GateFailed(NnshipError):
    """A validation gate was crossed. Exit code 1."""

    exit_code = 1


def require(package: str, extra: str, purpose: str = "") -> ModuleType:
    """Import an optional package lazily, raising `MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(package, extra, purpose) from exc
