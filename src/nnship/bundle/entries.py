"""What the manifest says about each artifact and about the inputs of the build: the
runtime it needs, the report's validation results with the machine they were measured on, the
TensorRT build kit, and the hashes of everything that made the bundle."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import nnship
from nnship.bundle.manifest import ArtifactEntry, RuntimeRequirement, Validation
from nnship.bundle.source import BuildFolder, BuiltArtifact
from nnship.core.fileio import sha256_file, stable_hash

RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}


def device(built: BuiltArtifact) -> str:
    if built.backend == "tensorrt":
        return "GPU"
    return built.device.upper() if built.device else "CPU"


def runtime_requirement(build: BuildFolder, built: BuiltArtifact) -> RuntimeRequirement:
    package = RUNTIME_PACKAGES[built.backend]
    versions = build.report.environment.runtime_versions or {}
    version = versions.get(package)
    # the version the build compiled and validated with: known to run it (older ones may too)
    return RuntimeRequirement(package=package, min_version=_release(version) if version else None)


def _release(version: str) -> str:
    """ "2026.4.1-22982-..." -> "2026.4.1"; "2.13.0+cpu" -> "2.13.0"."""
    for sep in ("-", "+"):
        version = version.split(sep, 1)[0]
    return version


def fingerprint(environment: Any) -> dict[str, Any]:
    """The report's environment in the shape of contract A's `Fingerprint`."""
    return {
        "id": environment.hardware_id,
        "cpu": environment.cpu_model,
        "flags": list(environment.cpu_flags),
        "cores": environment.logical_cpus,
        "runtimes": dict(environment.runtime_versions),
    }


def validation(report: Any, built: BuiltArtifact) -> Validation | None:
    row = built.row
    if row is None:
        return None
    metrics: dict[str, Any] = {}
    if row.classification is not None:
        for key in ("top1_agreement", "top5_agreement", "accuracy", "top1_drop"):
            metrics[key] = getattr(row.classification, key)
    for key, lowest in (("cosine_min", True), ("sqnr_db", True), ("max_abs_error", False)):
        metrics[key] = row.worst(key, lowest=lowest)[0]
    latency = row.latency_at()
    verdicts = [v.model_dump(mode="json") for v in report.gates if v.row == row.label]
    return Validation(
        metrics=metrics,
        latency_ms={
            "p50": latency.p50_ms if latency else None,
            "p90": latency.p90_ms if latency else None,
            "batch_size": float(latency.batch_size) if latency else None,
        },
        fingerprint=fingerprint(report.environment),
        gates={"passed": all(v["passed"] for v in verdicts), "verdicts": verdicts},
        size_bytes=row.size_bytes,
    )


def build_kit(built: BuiltArtifact, folder: Path, root: Path) -> dict[str, Any] | None:
    if built.backend != "tensorrt":
        return None
    from nnship.backends.tensorrt.buildkit import SCRIPT_FILE, SPEC_FILE, TRTEXEC_FILE

    rel = folder.relative_to(root).as_posix()
    spec = built.metadata.get("build_spec", {})
    return {
        "script": f"{rel}/{SCRIPT_FILE}",
        "spec": f"{rel}/{SPEC_FILE}",
        "trtexec_script": f"{rel}/{TRTEXEC_FILE}",
        "trtexec": built.metadata.get("trtexec"),
        "profiles": spec.get("profiles", []),
        "engine_built_here": bool(built.metadata.get("engine_built")),
    }


def input_hashes(
    build: BuildFolder, recipe: Any, data_fingerprints: dict[str, str]
) -> dict[str, str | None]:
    model = build.recipe.get("model", {}) or {}
    hashes: dict[str, str | None] = {
        "model_source": _source_hash(str(model.get("source", ""))),
        "weights": _file_hash(model.get("weights")),
        "model": _prefixed(build.report.model.fingerprint),
        "float_onnx": _file_hash(build.float_onnx),
        "calibration": _prefixed(data_fingerprints.get("calibration")),
        "evaluation": _prefixed(
            data_fingerprints.get("evaluation") or build.report.data.fingerprint
        ),
    }
    return hashes


def _prefixed(digest: str | None) -> str | None:
    return f"sha256:{digest}" if digest else None


def _file_hash(path: Any) -> str | None:
    if not path:
        return None
    path = Path(path)
    return _prefixed(sha256_file(path)) if path.is_file() else None


def _source_hash(source: str) -> str | None:
    """The model source's file: the file itself, `file.py:factory`'s file, or the module file of
    `pkg.mod:factory` (found without importing the module itself)."""
    if not source:
        return None
    head = source.rsplit(":", 1)[0] if ":" in source else source
    if Path(head).is_file():
        return _file_hash(head)
    with contextlib.suppress(Exception):  # a module that cannot be found: no hash, not an error
        import importlib.util

        spec = importlib.util.find_spec(head)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return _file_hash(spec.origin)
    return None


def version_hash(input_hashes: dict[str, str | None], entries: list[ArtifactEntry]) -> str:
    data = {
        "inputs": input_hashes,
        "artifacts": {e.id: [f.sha256 for f in e.files] for e in entries},
        "nnship": nnship.__version__,
    }
    return stable_hash(data, 12)
