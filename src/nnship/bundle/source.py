"""Reading a finished build folder: its report, its recipe and its artifacts.

A build folder is finished when `report/report.json` exists (the validate stage writes it
last). Its artifacts are the folders `backends/<backend>/<precision>/`: OpenVINO and TensorRT
write `artifact.json` (their completion marker, written last); an ONNX Runtime artifact is the
model file the report's row names (the build does not write a marker for it). A folder with
neither is an interrupted compile and is not an artifact.

Paths recorded in `artifact.json` and the report are absolute paths of the machine and folder
that built them; they are re-rooted at the folder being read, so a build folder that was moved
or copied still bundles.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.bundle.manifest import BundleError
from nnship.core.fileio import sha256_file

log = logging.getLogger(__name__)

MARKER = "artifact.json"
ORT_OPTIMIZED_SUFFIX = ".ort.onnx"
"""ONNX Runtime's optimized copy of a model, made for the build machine's CPU: not shipped."""


@dataclass(frozen=True)
class BuiltArtifact:
    """One finished artifact of a build folder."""

    backend: str
    precision: str
    device: str
    folder: Path
    """`backends/<backend>/<precision>/` in the build folder being read."""
    entry: Path
    """The file a runtime opens (TensorRT: the QDQ ONNX the build kit builds from)."""
    files: list[Path]
    """Every file to ship, absolute, inside `folder` (the completion marker excluded)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    row: Any = None
    """The report's `Row` for it (None: not validated, e.g. a TensorRT kit without engine)."""

    @property
    def id(self) -> str:
        return f"{self.backend}/{self.precision}"


@dataclass(frozen=True)
class BuildFolder:
    path: Path
    report: Any
    """The build's `nnship.validate.Report`."""
    recipe: dict[str, Any]
    artifacts: list[BuiltArtifact]
    float_onnx: Path | None
    """`export/model.fp32.onnx` (the specs and the float reference), when present."""

    def artifact(self, artifact_id: str) -> BuiltArtifact:
        for built in self.artifacts:
            if built.id == artifact_id:
                return built
        raise KeyError(artifact_id)


def read_build_folder(build_dir: Path | str) -> BuildFolder:
    """The finished artifacts of `build_dir`; `BundleError` naming what is missing otherwise."""
    from nnship.core.errors import ReportError
    from nnship.validate.report import Report

    root = Path(build_dir).expanduser().absolute()
    if not root.is_dir():
        raise BundleError(f"Build folder '{build_dir}' does not exist")
    report_path = root / "report" / "report.json"
    if not report_path.is_file():
        raise BundleError(
            f"'{report_path}' is missing: '{build_dir}' is not a finished build "
            "(run `nnship build` to the end first)"
        )
    try:
        report = Report.load(report_path)
    except ReportError as exc:
        raise BundleError(str(exc)) from None
    recipe = dict(report.extra.get("build", {}).get("recipe") or {})
    artifacts = _artifacts(root, report)
    if not artifacts:
        raise BundleError(
            f"'{root / 'backends'}' holds no finished artifacts (no backends/<backend>/"
            "<precision>/ with its model): nothing to bundle; run `nnship build` first"
        )
    float_onnx = root / "export" / "model.fp32.onnx"
    return BuildFolder(
        root, report, recipe, artifacts, float_onnx if float_onnx.is_file() else None
    )


def _artifacts(root: Path, report: Any) -> list[BuiltArtifact]:
    rows = {row.label: row for row in report.rows}
    found: list[BuiltArtifact] = []
    backends = root / "backends"
    if not backends.is_dir():
        return found
    for backend_dir in sorted(p for p in backends.iterdir() if p.is_dir()):
        for folder in sorted(p for p in backend_dir.iterdir() if p.is_dir()):
            label = f"{backend_dir.name}/{folder.name}"
            built = _read_one(folder, backend_dir.name, folder.name, rows.get(label))
            if built is None:
                log.warning("skipping %s: not a finished artifact (%s)", label, folder)
            else:
                found.append(built)
    order = {label: i for i, label in enumerate(rows)}
    # the report's order (fp32 first, then the recipe's precisions), unvalidated ones last
    return sorted(found, key=lambda a: (order.get(a.id, len(order)), a.id))


def _read_one(folder: Path, backend: str, precision: str, row: Any) -> BuiltArtifact | None:
    marker = folder / MARKER
    if marker.is_file():
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"'{marker}' is not readable JSON: {exc}") from None
        recorded = Path(data.get("path", ""))
        recorded_dir = recorded if backend == "tensorrt" else recorded.parent
        files = [_reroot(Path(f), recorded_dir, folder) for f in data.get("files", [])]
        files = [f for f in files if f.name != MARKER]
        metadata = dict(data.get("metadata", {}))
        if backend == "tensorrt":
            entry = folder / str(metadata.get("build_spec", {}).get("onnx", ""))
        else:
            entry = _reroot(recorded, recorded_dir, folder)
        device = str(data.get("device", "cpu"))
    elif backend == "onnxruntime":
        entry = _ort_entry(folder, row)
        if entry is None:
            return None
        files = [entry, *sorted(folder.glob(f"{entry.stem}*.data"))]
        metadata, device = {}, (row.device if row is not None and row.device else "cpu")
    else:
        return None
    for path in [entry, *files]:
        if not path.is_file():
            raise BundleError(f"'{path}' is missing from the build folder ({backend}/{precision})")
    if row is not None and row.sha256 and not (backend == "tensorrt"):
        if sha256_file(entry) != row.sha256:
            raise BundleError(
                f"'{entry}' has changed since the build validated it (sha256 differs from "
                "report/report.json): rebuild before bundling"
            )
    if entry not in files:
        files.insert(0, entry)
    return BuiltArtifact(
        backend, precision, device, folder, entry, sorted(set(files)), metadata, row
    )


def _reroot(path: Path, recorded_dir: Path, folder: Path) -> Path:
    try:
        return folder / path.relative_to(recorded_dir)
    except ValueError:
        return folder / path.name


def _ort_entry(folder: Path, row: Any) -> Path | None:
    if row is not None and row.path:
        candidate = folder / Path(row.path).name
        if candidate.is_file():
            return candidate
    models = [p for p in sorted(folder.glob("*.onnx")) if not p.name.endswith(ORT_OPTIMIZED_SUFFIX)]
    return models[0] if len(models) == 1 else None
