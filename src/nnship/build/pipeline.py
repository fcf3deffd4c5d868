"""The stages of `nnship build`, in order, each reused when its inputs' hashes are unchanged.

Only orchestration lives here: every stage calls its owner's public function (sources,
compress, exporter, calibration, quantize, backends, validate); imports are lazy so a build
needs only the stages its recipe uses.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nnship
from nnship.build import BuildResult
from nnship.build.cache import StageStamp, stable_hash
from nnship.core import Artifact, DataSource, TensorSpec, example_batch
from nnship.errors import RecipeError
from nnship.fileio import sha256_file
from nnship.recipe import Recipe

log = logging.getLogger("nnship.build")

SYNTHETIC_SAMPLES = 64
"""Evaluation samples generated from the input specs when a recipe names no data."""


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model


def _dynamic_batch(specs: list[TensorSpec]) -> list[TensorSpec]:
    """Specs with axis 0 symbolic, for checking data batches of any size."""
    return [TensorSpec(s.name, ("batch", *s.shape[1:]) if s.shape else (), s.dtype) for s in specs]


class Pipeline:
    """One build of one recipe into `out`. Use `run()` once."""

    def __init__(self, recipe: Recipe, out: Path, *, reuse: bool = True) -> None:
        self.recipe = recipe
        self.out = out
        self.reuse = reuse
        self.stages: dict[str, str] = {}
        self.notes: list[str] = []
        self.name = str(recipe.path) if recipe.path else "recipe"

    # -- helpers -------------------------------------------------------------------------------
    def _stamp(self, stage_dir: Path, name: str, inputs: dict[str, Any]) -> tuple[StageStamp, Any]:
        stage_dir.mkdir(parents=True, exist_ok=True)
        stamp = StageStamp(stage_dir, name, inputs)
        found = stamp.lookup() if self.reuse else None
        if found is None:
            stamp.invalidate()
        return stamp, found

    def _mark(self, stage: str, state: str) -> None:
        self.stages[stage] = state
        log.info("%-12s %s", stage, state)

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> BuildResult:
        loaded = self._load_model()
        declared = loaded.input_specs or self.recipe.model.input_specs() or []
        calib, evaluation, train = self._open_data(_dynamic_batch(declared))
        source_model = self._compress(loaded, train)
        float_onnx, specs = self._export(source_model)
        if evaluation is None:
            evaluation = self._synthetic(specs)
        onnx_for = self._quantize(float_onnx, calib, evaluation)
        artifacts = self._compile(onnx_for, calib)
        report = self._validate(loaded, float_onnx, specs, evaluation, artifacts)
        report_path = self._save_report(report)
        exit_code = 0 if report.passed else 1
        return BuildResult(
            report, [a for a, _ in artifacts], exit_code, self.out, report_path, dict(self.stages)
        )

    # -- model ---------------------------------------------------------------------------------
    def _load_model(self) -> Any:
        from nnship.sources.models import load_model

        cfg = self.recipe.model
        loaded = load_model(
            cfg.source,
            inputs=cfg.input_specs(),
            factory_kwargs=cfg.factory_kwargs or None,
            weights=cfg.weights,
            trust_pickle=cfg.trust_pickle,
            base_dir=self.recipe.base_dir,
        )
        self._mark("model", "loaded")
        return loaded

    # -- compress ------------------------------------------------------------------------------
    def _compress(self, loaded: Any, train: DataSource | None) -> Any:
        recipe = self.recipe
        if recipe.prune is None and recipe.distill is None:
            self.stages["compress"] = "skipped"
            return loaded
        if loaded.module is None:
            section = "[prune]" if recipe.prune is not None else "[distill]"
            raise RecipeError(
                f"{self.name}: {section} needs a PyTorch model, but [model] source "
                f"'{recipe.model.source}' is an ONNX file"
            )
        from nnship.build.stages.compress import run_compress

        return run_compress(self, loaded, train)

    # -- export --------------------------------------------------------------------------------
    def _export(self, model: Any) -> tuple[Path, list[TensorSpec]]:
        from nnship.onnx_utils import load_onnx, onnx_input_specs

        if model.module is None and model.onnx_path is not None:
            self._mark("export", "skipped (ONNX source)")
            path = Path(model.onnx_path)
            return path, onnx_input_specs(load_onnx(path, load_weights=False))
        from nnship.exporter import export_onnx

        export_dir = self.out / "export"
        out_path = export_dir / "model.fp32.onnx"
        specs = model.input_specs or self.recipe.model.input_specs()
        if not specs:
            raise RecipeError(
                f"{self.name}: [model] inputs: needed to export '{self.recipe.model.source}', "
                'e.g. inputs = ["x:1x3x224x224"]'
            )
        inputs = {
            "model": model.fingerprint,
            "inputs": [s.to_dict() for s in specs],
            "export": _dump(self.recipe.export),
            "seed": self.recipe.seed,
            "versions": _versions(),
        }
        stamp, found = self._stamp(export_dir, "export", inputs)
        if found is not None:
            self._mark("export", "reused")
        else:
            result = export_onnx(model, out_path, input_specs=specs, options=self.recipe.export)
            found = {
                "opset": getattr(result, "opset", None),
                "exporter": getattr(result, "exporter", None),
                "max_abs_error": getattr(result, "max_abs_error", None),
                "output_names": list(getattr(result, "output_names", []) or []),
            }
            stamp.record([out_path], found)
            self._mark("export", "ran")
        self.export_info = found
        return out_path, onnx_input_specs(load_onnx(out_path, load_weights=False))

    # -- data ----------------------------------------------------------------------------------
    def _open_data(
        self, specs: list[TensorSpec]
    ) -> tuple[DataSource | None, DataSource | None, DataSource | None]:
        """(calibration, evaluation, train) data; evaluation falls back to calibration (with a
        warning), train to calibration. Checked against `specs` (batch axis free)."""
        cfg = self.recipe.data
        if not any((cfg.calibration, cfg.evaluation, cfg.train)):
            return None, None, None
        from nnship.sources.data import open_data_config

        base = self.recipe.base_dir
        check = specs or None

        def open_split(split: str) -> DataSource | None:
            data_cfg = getattr(cfg, split)
            return open_data_config(data_cfg, check, base) if data_cfg is not None else None

        calib = open_split("calibration")
        evaluation = open_split("evaluation")
        train = open_split("train") or calib
        if evaluation is None and calib is not None:
            log.warning("no [data.evaluation]: validating on the calibration data")
            self.notes.append("Evaluated on the calibration data (no [data.evaluation] given).")
            evaluation = calib
        return calib, evaluation, train

    def _synthetic(self, specs: list[TensorSpec]) -> DataSource:
        """Deterministic random inputs when a recipe names no data (drift only, no accuracy)."""
        from nnship.sources.arrays import ArrayData

        log.warning(
            "no [data] in the recipe: validating on %d synthetic samples (drift only)",
            SYNTHETIC_SAMPLES,
        )
        self.notes.append(
            f"No data given: evaluated on {SYNTHETIC_SAMPLES} synthetic samples "
            "(numeric drift only, no accuracy)."
        )
        return ArrayData(
            example_batch(specs, batch=SYNTHETIC_SAMPLES, seed=self.recipe.seed),
            name="synthetic",
        )

    # -- quantize ------------------------------------------------------------------------------
    def _quantize(
        self, float_onnx: Path, calib: DataSource | None, evaluation: DataSource
    ) -> dict[tuple[str, str], tuple[Path, dict[str, Any]]]:
        """(backend, precision) -> (ONNX to compile, quantizer info)."""
        targets = list(getattr(self.recipe.backends, "targets", ["onnxruntime"]))
        onnx_for: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {
            (b, "fp32"): (float_onnx, {}) for b in targets
        }
        if self.recipe.quantize is None:
            self.stages["calibration"] = self.stages["quantize"] = "skipped"
            return onnx_for
        from nnship.build.stages.quantize import run_quantize

        onnx_for.update(run_quantize(self, float_onnx, targets, calib, evaluation))
        order = ["fp32", *self.recipe.quantize.precisions]
        # report rows in a stable order: backends as listed, fp32 first, then the precisions
        return dict(
            sorted(
                onnx_for.items(), key=lambda kv: (targets.index(kv[0][0]), order.index(kv[0][1]))
            )
        )

    # -- compile -------------------------------------------------------------------------------
    def _compile(
        self,
        onnx_for: dict[tuple[str, str], tuple[Path, dict[str, Any]]],
        calib: DataSource | None,
    ) -> list[tuple[Artifact, dict[str, Any]]]:
        artifacts: list[tuple[Artifact, dict[str, Any]]] = []
        for (backend_name, precision), (onnx_path, info) in onnx_for.items():
            options = self._backend_options(backend_name)
            stage_dir = self.out / "backends" / backend_name / precision
            inputs = {
                "onnx": sha256_file(onnx_path),
                "precision": precision,
                "options": options,
                "calib": self.data_key(calib) if info.get("int8_mode") == "nncf" else None,
                "exclude": _dump(getattr(self.recipe.quantize, "exclude", None)),
                "versions": _versions(),
            }
            stamp, found = self._stamp(stage_dir, "compile", inputs)
            label = f"compile {backend_name}/{precision}"
            if found is not None:
                artifact = Artifact.from_dict(found)
                self._mark(label, "reused")
            else:
                artifact = self._compile_one(
                    onnx_path, stage_dir, backend_name, precision, info, calib
                )
                stamp.record([stage_dir], artifact.to_dict())
                self._mark(label, "ran")
            artifacts.append((artifact, info))
        return artifacts

    def _compile_one(
        self,
        onnx_path: Path,
        stage_dir: Path,
        backend_name: str,
        precision: str,
        info: dict[str, Any],
        calib: DataSource | None,
    ) -> Artifact:
        from nnship.backends.compile import compile_model

        exclude = getattr(self.recipe.quantize, "exclude", None)
        nncf = info.get("int8_mode") == "nncf"
        return compile_model(
            onnx_path,
            stage_dir,
            backend=backend_name,
            precision=precision,
            config=self.recipe.backends,
            calib_data=calib if nncf else None,
            exclude_names=list(exclude.names) if exclude is not None and nncf else [],
            exclude_op_types=list(exclude.op_types) if exclude is not None and nncf else [],
            exclude_patterns=list(exclude.regex) if exclude is not None and nncf else [],
        )

    def _backend_options(self, backend_name: str) -> dict[str, Any]:
        cfg = self.recipe.backends
        return _dump(cfg.options_for(backend_name)) or {}

    # -- validate ------------------------------------------------------------------------------
    def _validate(
        self,
        loaded: Any,
        float_onnx: Path,
        specs: list[TensorSpec],
        evaluation: DataSource,
        artifacts: list[tuple[Artifact, dict[str, Any]]],
    ) -> Any:
        from nnship.build.stages.validate import run_validation

        return run_validation(self, loaded, float_onnx, specs, evaluation, artifacts)

    def _save_report(self, report: Any) -> Path:
        path = self.out / "report" / "report.json"
        report.save(path)
        self._mark("report", "written")
        return path

    def data_key(self, data: DataSource | None) -> str | None:
        return None if data is None else data.fingerprint()


def _versions() -> dict[str, str]:
    """Versions that change what a stage produces (a new exporter may emit other bytes)."""
    import onnx
    import onnxruntime
    import torch

    return {
        "nnship": nnship.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


__all__ = ["Pipeline", "stable_hash"]
