"""The calibration and quantization stages of `nnship build`.

Contract: requires the float ONNX, the calibration data (for INT8) and the evaluation data
(read only by settings that score candidates: a budget, method "auto", transforms); returns a
`QuantizedModel` (the ONNX to compile + the quantizer's `QuantizeResult`, None for a float ONNX)
for every (backend, precision) the recipe asks for, fp32 included, in report order. Writes
`calibration/table.json` (stored as `CalibrationResult`) and
`quantize/model.<precision>[.<profile>].onnx` (stored as its `QuantizeResult`); each is cached on
its inputs' hashes.

Statistics are collected once (one `calibration/table.json`) and reused for every precision and
every backend profile; each distinct (precision, profile) pair is quantized once. A backend
gets the Q/DQ placement of its own profile unless the recipe pins `[quantize] profile`.
OpenVINO INT8 in "nncf" mode quantizes the float model itself, so it gets the float ONNX.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import DataSource
from nnship.core.errors import RecipeError
from nnship.core.fileio import sha256_file
from nnship.stages.context import StageContext

if TYPE_CHECKING:
    from nnship.calibration import CalibrationTable
    from nnship.quantize.config import QuantizeConfig
    from nnship.quantize.result import QuantizeResult

log = logging.getLogger("nnship.pipeline")


@dataclass(frozen=True)
class QuantizedModel:
    """The ONNX a (backend, precision) compiles from, and what the quantizer decided."""

    path: Path
    result: QuantizeResult | None = None
    """The quantizer's result; None when the backend compiles the float ONNX (fp32, a backend
    inference precision such as bf16, OpenVINO INT8 made by NNCF)."""
    nncf: bool = False
    """OpenVINO INT8 in "nncf" mode: the backend quantizes the float ONNX with NNCF."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "result": self.result.to_dict() if self.result else None,
            "nncf": self.nncf,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizedModel:
        from nnship.quantize.result import QuantizeResult

        result = data["result"]
        return cls(
            path=Path(data["path"]),
            result=QuantizeResult.from_dict(result) if result is not None else None,
            nncf=bool(data["nncf"]),
        )


@dataclass(frozen=True)
class CalibrationResult:
    """The calibration stage's result: the statistics table it wrote and its sample count."""

    path: Path
    num_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "num_samples": self.num_samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationResult:
        return cls(path=Path(data["path"]), num_samples=int(data["num_samples"]))


def _profile_for(cfg: QuantizeConfig, backend: str, precision: str) -> str:
    """Which Q/DQ profile a backend's model follows. Only INT8 placement depends on it."""
    if precision != "int8":
        return "any"
    if "profile" in cfg.model_fields_set:
        return str(cfg.profile)
    from nnship.quantize.config import PROFILES

    return backend if backend in PROFILES else str(cfg.profile)


def _uses_eval(cfg: QuantizeConfig) -> bool:
    """Whether the quantizer's output can depend on the evaluation data (budget, method
    "auto", transforms "auto"), so the stage must be redone when that data changes."""
    return (
        cfg.has_budget
        or getattr(cfg, "method", None) == "auto"
        or cfg.equalization != "off"
        or cfg.smoothing != "off"
    )


def _nncf_int8(ctx: StageContext, backend: str, precision: str) -> bool:
    if backend != "openvino" or precision != "int8":
        return False
    options = ctx.recipe.backends.options_for("openvino")
    return getattr(options, "int8_mode", "qdq") == "nncf"


def plan_quantization(
    ctx: StageContext, targets: list[str]
) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], str]]:
    """(precision, profile) -> backends that need that ONNX; and (backend, precision) pairs
    that take the float ONNX (OpenVINO NNCF, a backend inference precision) or are skipped,
    with the reason. Which precisions a backend runs is the backend's answer
    (`nnship.backends.precisions_of`)."""
    from nnship.backends import precisions_of
    from nnship.quantize.config import RUNTIME_PRECISIONS

    cfg = ctx.recipe.quantize
    assert cfg is not None  # planned only for a recipe with [quantize]
    plan: dict[tuple[str, str], list[str]] = {}
    special: dict[tuple[str, str], str] = {}
    for precision in cfg.precisions:
        for backend in targets:
            if precision not in precisions_of(backend):
                why = f"{backend} does not run {precision} models"
                if precision == "bf16":
                    why += " (bf16 is an OpenVINO inference precision)"
                special[(backend, precision)] = why
            elif precision in RUNTIME_PRECISIONS:  # a backend inference precision: float ONNX
                special[(backend, precision)] = "float"
            elif _nncf_int8(ctx, backend, precision):
                special[(backend, precision)] = "nncf"
            else:
                plan.setdefault((precision, _profile_for(cfg, backend, precision)), []).append(
                    backend
                )
    return plan, special


def run_quantize(
    ctx: StageContext, float_onnx: Path, calib: DataSource | None, evaluation: DataSource
) -> dict[tuple[str, str], QuantizedModel]:
    """(backend, precision) -> the ONNX to compile, for fp32 and every recipe precision, in
    report order: backends as listed, fp32 first, then the precisions in recipe order."""
    targets = list(getattr(ctx.recipe.backends, "targets", ["onnxruntime"]))
    models = {(b, "fp32"): QuantizedModel(float_onnx) for b in targets}
    if ctx.recipe.quantize is None:
        ctx.mark("calibration", "skipped")
        ctx.mark("quantize", "skipped")
        return models
    models.update(_quantize_all(ctx, float_onnx, targets, calib, evaluation))
    order = ["fp32", *ctx.recipe.quantize.precisions]
    return dict(
        sorted(models.items(), key=lambda kv: (targets.index(kv[0][0]), order.index(kv[0][1])))
    )


def _quantize_all(
    ctx: StageContext,
    float_onnx: Path,
    targets: list[str],
    calib: DataSource | None,
    evaluation: DataSource,
) -> dict[tuple[str, str], QuantizedModel]:
    """Calibrate once, quantize each planned (precision, profile)."""
    plan, special = plan_quantization(ctx, targets)
    needs_calib = any(p == "int8" for p, _ in plan) or "nncf" in special.values()
    if needs_calib and calib is None:
        raise RecipeError(
            f"{ctx.name}: [quantize] precisions includes int8, which needs calibration "
            "data: add a [data.calibration] section"
        )
    from nnship.backends import check_precision_supported

    for (backend, precision), why in special.items():
        if why == "float":  # refuse bf16 before any work on a CPU without it
            check_precision_supported(backend, precision, ctx.recipe.backends.options_for(backend))
    out: dict[tuple[str, str], QuantizedModel] = {}
    for (backend, precision), why in special.items():
        if why == "nncf":
            out[(backend, precision)] = QuantizedModel(float_onnx, nncf=True)
        elif why == "float":
            out[(backend, precision)] = QuantizedModel(float_onnx)
        else:
            log.warning("skipping %s/%s: %s", backend, precision, why)
            ctx.note(f"Skipped {backend}/{precision}: {why}.")
    calibrated = None
    if any(p == "int8" for p, _ in plan):
        calibrated = _calibrate(ctx, float_onnx, calib)
    else:
        ctx.mark("calibration", "skipped")
    for (precision, profile), backends in plan.items():
        model = _quantize_one(ctx, float_onnx, precision, profile, calibrated, calib, evaluation)
        for backend in backends:
            out[(backend, precision)] = model
    return out


def _calibrate(
    ctx: StageContext, float_onnx: Path, calib: DataSource | None
) -> tuple[CalibrationTable, CalibrationResult]:
    """The statistics table (read back from the stage cache, or collected) and its result."""
    from nnship.calibration import CalibrationTable
    from nnship.calibration.statistics import collect_with_settings

    assert calib is not None and ctx.recipe.quantize is not None
    settings = ctx.recipe.quantize.calibration
    stage_dir = ctx.out / "calibration"
    path = stage_dir / "table.json"
    inputs = {
        "onnx": sha256_file(float_onnx),
        "data": calib.fingerprint(),
        "settings": settings.model_dump(mode="json"),
    }
    stamp, found = ctx.stamp(stage_dir, "calibration", inputs, CalibrationResult.from_dict)
    if found is not None:
        ctx.mark("calibration", "reused")
        return CalibrationTable.load(found.path), found
    table = collect_with_settings(float_onnx, calib, settings)
    table.save(path)
    result = CalibrationResult(path, table.num_samples)
    stamp.record([path], result)
    ctx.mark("calibration", "ran")
    return table, result


def _quantize_one(
    ctx: StageContext,
    float_onnx: Path,
    precision: str,
    profile: str,
    calibrated: tuple[CalibrationTable, CalibrationResult] | None,
    calib: DataSource | None,
    evaluation: DataSource,
) -> QuantizedModel:
    from nnship.quantize import quantize
    from nnship.quantize.result import QuantizeResult

    assert ctx.recipe.quantize is not None
    table, calibration = calibrated if calibrated else (None, None)
    cfg = ctx.recipe.quantize.for_precision(precision)
    if profile != "any":
        cfg = cfg.model_copy(update={"profile": profile})
    stage_dir = ctx.out / "quantize"
    suffix = precision if profile == "any" else f"{precision}.{profile}"
    out_path = stage_dir / f"model.{suffix}.onnx"
    inputs = {
        "onnx": sha256_file(float_onnx),
        "config": cfg.model_dump(mode="json"),
        "table": sha256_file(calibration.path) if calibration else None,
        "calib": ctx.data_key(calib) if precision == "int8" else None,
        "eval": evaluation.fingerprint() if _uses_eval(cfg) else None,
        "seed": ctx.recipe.seed,
    }
    label = f"quantize {suffix}"
    stamp, found = ctx.stamp(stage_dir, f"quantize-{suffix}", inputs, QuantizeResult.from_dict)
    if found is not None:
        ctx.mark(label, "reused")
        return QuantizedModel(found.path, found)
    result = quantize(
        float_onnx,
        out_path,
        cfg,
        table=table if precision == "int8" else None,
        calib_data=calib if precision == "int8" else None,
        eval_data=evaluation,
    )
    stamp.record([result.path], result)
    ctx.mark(label, "ran")
    return QuantizedModel(result.path, result)
