"""The calibration and quantization stages of `nnship build`.

Statistics are collected once (one `calibration/table.json`) and reused for every precision and
every backend profile; each distinct (precision, profile) pair is quantized once. A backend
gets the Q/DQ placement of its own profile unless the recipe pins `[quantize] profile`.
OpenVINO INT8 in "nncf" mode quantizes the float model itself, so it gets the float ONNX.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import DataSource
from nnship.errors import RecipeError
from nnship.fileio import sha256_file

if TYPE_CHECKING:
    from nnship.build_pipeline import Pipeline

log = logging.getLogger("nnship.build")

# Precisions each backend can run; others are skipped with a note in the report.
BACKEND_PRECISIONS = {
    "onnxruntime": ("int8", "fp16", "dynamic-int8"),
    "openvino": ("int8", "fp16", "bf16"),
    "tensorrt": ("int8", "fp16"),
}


def _profile_for(cfg: Any, backend: str, precision: str) -> str:
    """Which Q/DQ profile a backend's model follows. Only INT8 placement depends on it."""
    if precision != "int8":
        return "any"
    if "profile" in cfg.model_fields_set:
        return str(cfg.profile)
    from nnship.quantize.config import PROFILES

    return backend if backend in PROFILES else str(cfg.profile)


def _uses_eval(cfg: Any) -> bool:
    """Whether the quantizer's output can depend on the evaluation data (budget, method
    "auto", transforms "auto"), so the stage must be redone when that data changes."""
    return (
        cfg.has_budget
        or getattr(cfg, "method", None) == "auto"
        or cfg.equalization != "off"
        or cfg.smoothing != "off"
    )


def _nncf_int8(pipeline: Pipeline, backend: str, precision: str) -> bool:
    if backend != "openvino" or precision != "int8":
        return False
    options = pipeline.recipe.backends.options_for("openvino")
    return getattr(options, "int8_mode", "qdq") == "nncf"


def plan_quantization(
    pipeline: Pipeline, targets: list[str]
) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], str]]:
    """(precision, profile) -> backends that need that ONNX; and (backend, precision) pairs
    that take the float ONNX (OpenVINO NNCF) or are skipped, with the reason."""
    from nnship.quantize.config import RUNTIME_PRECISIONS

    cfg = pipeline.recipe.quantize
    plan: dict[tuple[str, str], list[str]] = {}
    special: dict[tuple[str, str], str] = {}
    for precision in cfg.precisions:
        for backend in targets:
            if precision not in BACKEND_PRECISIONS.get(backend, ()):
                why = f"{backend} does not run {precision} models"
                if precision == "bf16":
                    why += " (bf16 is an OpenVINO inference precision)"
                special[(backend, precision)] = why
            elif precision in RUNTIME_PRECISIONS:  # a backend inference precision: float ONNX
                special[(backend, precision)] = "float"
            elif _nncf_int8(pipeline, backend, precision):
                special[(backend, precision)] = "nncf"
            else:
                plan.setdefault((precision, _profile_for(cfg, backend, precision)), []).append(
                    backend
                )
    return plan, special


def run_quantize(
    pipeline: Pipeline,
    float_onnx: Path,
    targets: list[str],
    calib: DataSource | None,
    evaluation: DataSource,
) -> dict[tuple[str, str], tuple[Path, dict[str, Any]]]:
    """Calibrate once, quantize each planned (precision, profile); returns
    (backend, precision) -> (ONNX path, quantizer result as a dict)."""
    plan, special = plan_quantization(pipeline, targets)
    needs_calib = any(p == "int8" for p, _ in plan) or "nncf" in special.values()
    if needs_calib and calib is None:
        raise RecipeError(
            f"{pipeline.name}: [quantize] precisions includes int8, which needs calibration "
            "data: add a [data.calibration] section"
        )
    if "float" in special.values():  # refuse bf16 before any work on a CPU without it
        from nnship.backends.openvino_runner import _ov, check_bf16

        device = pipeline.recipe.backends.options_for("openvino").device
        check_bf16(_ov().Core(), str(device).upper())
    out: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}
    for (backend, precision), why in special.items():
        if why == "nncf":
            out[(backend, precision)] = (float_onnx, {"int8_mode": "nncf"})
        elif why == "float":
            out[(backend, precision)] = (float_onnx, {})
        else:
            log.warning("skipping %s/%s: %s", backend, precision, why)
            pipeline.notes.append(f"Skipped {backend}/{precision}: {why}.")
    table, table_path = None, None
    if any(p == "int8" for p, _ in plan):
        table, table_path = _calibrate(pipeline, float_onnx, calib)
    else:
        pipeline.stages["calibration"] = "skipped"
    for (precision, profile), backends in plan.items():
        path, info = _quantize_one(
            pipeline, float_onnx, precision, profile, table, table_path, calib, evaluation
        )
        for backend in backends:
            out[(backend, precision)] = (path, info)
    return out


def _calibrate(pipeline: Pipeline, float_onnx: Path, calib: DataSource | None) -> tuple[Any, Path]:
    from nnship.calibration import CalibrationTable, collect_statistics

    assert calib is not None
    settings = pipeline.recipe.quantize.calibration
    stage_dir = pipeline.out / "calibration"
    path = stage_dir / "table.json"
    inputs = {
        "onnx": sha256_file(float_onnx),
        "data": calib.fingerprint(),
        "settings": settings.model_dump(mode="json"),
    }
    stamp, found = pipeline._stamp(stage_dir, "calibration", inputs)
    if found is not None:
        pipeline._mark("calibration", "reused")
        return CalibrationTable.load(path), path
    table = collect_statistics(
        float_onnx,
        calib,
        num_bins=settings.num_bins,
        batch_size=settings.batch_size,
        max_samples=settings.max_samples,
    )
    table.save(path)
    stamp.record([path], {"num_samples": getattr(table, "num_samples", None)})
    pipeline._mark("calibration", "ran")
    return table, path


def _quantize_one(
    pipeline: Pipeline,
    float_onnx: Path,
    precision: str,
    profile: str,
    table: Any,
    table_path: Path | None,
    calib: DataSource | None,
    evaluation: DataSource,
) -> tuple[Path, dict[str, Any]]:
    from nnship.quantize import quantize
    from nnship.quantize.result import QuantizeResult

    cfg = pipeline.recipe.quantize.for_precision(precision)
    if profile != "any":
        cfg = cfg.model_copy(update={"profile": profile})
    stage_dir = pipeline.out / "quantize"
    suffix = precision if profile == "any" else f"{precision}.{profile}"
    out_path = stage_dir / f"model.{suffix}.onnx"
    inputs = {
        "onnx": sha256_file(float_onnx),
        "config": cfg.model_dump(mode="json"),
        "table": sha256_file(table_path) if table_path else None,
        "calib": pipeline.data_key(calib) if precision == "int8" else None,
        "eval": evaluation.fingerprint() if _uses_eval(cfg) else None,
        "seed": pipeline.recipe.seed,
    }
    label = f"quantize {suffix}"
    stamp, found = pipeline._stamp(stage_dir, f"quantize-{suffix}", inputs)
    if found is not None:
        pipeline._mark(label, "reused")
        return Path(found.get("path", out_path)), found
    result: QuantizeResult = quantize(
        float_onnx,
        out_path,
        cfg,
        table=table if precision == "int8" else None,
        calib_data=calib if precision == "int8" else None,
        eval_data=evaluation,
    )
    written = Path(result.path)
    info = result.to_dict()
    stamp.record([written], info)
    pipeline._mark(label, "ran")
    return written, info
