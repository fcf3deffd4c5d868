"""The Python API: one function per CLI command, each a thin wrapper over its stage's function.

Everything the command line does is reachable from here. Stage modules are imported inside the
functions, so `import nnship.api` works in any installation and only the stages a call uses
must be installed (optional runtimes raise `MissingDependencyError` naming the pip extra).

    from nnship import api
    result = api.build("examples/demo/recipe.toml")
    print(result.exit_code, result.report_path)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.build import BuildResult
from nnship.recipe import Recipe, load_recipe

if TYPE_CHECKING:
    from nnship.core import Artifact, DataSource, Runner

__all__ = [
    "BuildResult",
    "Recipe",
    "bench",
    "build",
    "calibrate",
    "check",
    "compare",
    "compile",
    "demo",
    "distill",
    "explain",
    "export",
    "load_recipe",
    "prune",
    "quantize",
    "report",
    "validate",
]


def build(
    recipe: Recipe | str | Path,
    *,
    output_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    reuse: bool = True,
    cache: str | Path | None = None,
) -> BuildResult:
    """`nnship build`: run a recipe (a `Recipe` or a TOML path). See `nnship.build.build`."""
    from nnship.build import build as _build

    return _build(recipe, output_dir=output_dir, overrides=overrides, reuse=reuse, cache=cache)


def demo(
    *,
    cache: str | Path | None = None,
    output_dir: str | Path | None = None,
    recipe: str | Path | None = None,
    reuse: bool = True,
) -> BuildResult:
    """`nnship demo`: train (first use, cached) and build the demo model. See `nnship.demo`."""
    from nnship.demo import demo as _demo

    return _demo(cache=cache, output_dir=output_dir, recipe=recipe, reuse=reuse)


def export(
    model: Any,
    out_path: str | Path,
    *,
    inputs: list[Any] | None = None,
    factory_kwargs: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    options: Any = None,
) -> Any:
    """`nnship export`: load a model source (or take an `nn.Module`) and export it to a verified
    ONNX file. `inputs` are `TensorSpec`s or `"name:1x3x224x224[:dtype]"` strings; `options` an
    `nnship.exporter.ExportConfig` (default settings when None). Returns the `ExportResult`."""
    from nnship.exporter import export_onnx
    from nnship.exporter.config import ExportConfig
    from nnship.sources.models import load_model

    loaded = load_model(
        model,
        inputs=inputs,
        factory_kwargs=factory_kwargs,
        weights=weights,
        trust_pickle=trust_pickle,
    )
    return export_onnx(loaded, out_path, options=options or ExportConfig())


def validate(
    baseline: Runner, candidates: dict[str, Runner], data: DataSource, **kwargs: Any
) -> Any:
    """`nnship validate`: compare candidate runners with the float baseline on `data` and
    return a `Report`. Keyword arguments as `nnship.validate.validate` (config, gates, latency,
    artifacts, ...)."""
    from nnship.validate import validate as _validate

    return _validate(baseline, candidates, data, **kwargs)


def bench(path: str | Path, **kwargs: Any) -> Any:
    """`nnship bench`: latency, throughput, cold start and memory of one artifact (.onnx,
    OpenVINO .xml or compile folder, TensorRT engine); returns a `BenchResult`. Keyword
    arguments as `nnship.validate.bench.bench` (backend, latency: `LatencyConfig` (default batch
    1, 200 timed runs), data, inputs, backend_options). Milliseconds throughout."""
    from nnship.validate.bench import bench as _bench

    return _bench(path, **kwargs)


def calibrate(onnx_path: str | Path, data: DataSource, *args: Any, **kwargs: Any) -> Any:
    """`nnship calibrate`: collect activation statistics once over `data`; returns the
    `CalibrationTable` (written to `out_path` when given). Arguments as
    `nnship.calibration.calibrate` (out_path, config: `CalibrationConfig`, trt_cache)."""
    from nnship.calibration import calibrate as _calibrate

    return _calibrate(onnx_path, data, *args, **kwargs)


def quantize(onnx_path: str | Path, out_path: str | Path, config: Any = None, **kwargs: Any) -> Any:
    """`nnship quantize`: write one quantized ONNX (QDQ INT8, FP16 or dynamic INT8) and return
    the `QuantizeResult` (float nodes with reasons, reverted nodes). `config` is an
    `nnship.quantize.config.QuantizeConfig` (default INT8, ONNX Runtime profile); keyword
    arguments as `nnship.quantize.quantize` (table, calib_data, eval_data)."""
    from nnship.quantize import quantize as _quantize
    from nnship.quantize.config import QuantizeConfig

    return _quantize(onnx_path, out_path, config or QuantizeConfig(), **kwargs)


def compile(  # noqa: A001 - the CLI command is called compile
    onnx_path: str | Path,
    out_dir: str | Path,
    *,
    backend: str = "onnxruntime",
    precision: str | None = None,
    **options: Any,
) -> Artifact:
    """`nnship compile`: lower an ONNX model to a backend artifact ("onnxruntime", "openvino",
    "tensorrt"). `precision` None lets the backend detect it from the model (QDQ -> int8)."""
    from nnship.backends import get_backend

    kwargs = dict(options)
    if precision is not None:
        kwargs["precision"] = precision
    return get_backend(backend).compile(Path(onnx_path), Path(out_dir), **kwargs)


def check(onnx_path: str | Path, *, target: str = "tensorrt") -> list[Any]:
    """`nnship check --target tensorrt`: lint an ONNX for a target without its runtime; returns
    the findings (each names the node and the rule)."""
    if target.lower() not in ("tensorrt", "trt"):
        from nnship.errors import BackendError

        raise BackendError(f"check supports --target tensorrt only, not '{target}'")
    from nnship.backends.tensorrt_check import check_tensorrt

    return check_tensorrt(onnx_path)


def prune(module: Any, example_inputs: Any, config: Any, *, data: Any = None) -> Any:
    """`nnship prune`: structured or unstructured pruning of an `nn.Module`; returns a
    `PruneResult`. See `nnship.compress.prune`."""
    from nnship.compress import prune as _prune

    return _prune(module, example_inputs, config, data=data)


def distill(teacher: Any, student: Any, data: Any, config: Any, *, val_data: Any = None) -> Any:
    """`nnship distill`: knowledge distillation of `student` from `teacher`; returns a
    `DistillResult`. See `nnship.compress.distill`."""
    from nnship.compress import distill as _distill

    return _distill(teacher, student, data, config, val_data=val_data)


def compare(baseline: Any, current: Any, **kwargs: Any) -> Any:
    """`nnship compare`: check a new report against a stored one (reports or their paths).
    See `nnship.validate.compare_reports`."""
    from nnship.validate import Report, compare_reports

    def as_report(value: Any) -> Any:
        return value if isinstance(value, Report) else Report.load(value)

    return compare_reports(as_report(baseline), as_report(current), **kwargs)


def explain(*args: Any, **kwargs: Any) -> Any:
    """`nnship explain`: per-layer drift of an artifact against the float model. See
    `nnship.validate.explain.explain`."""
    from nnship.validate.explain import explain as _explain

    return _explain(*args, **kwargs)


def report(path: str | Path, *, format: str = "markdown") -> str:  # noqa: A002
    """`nnship report`: render a saved report JSON as "markdown" (default), "json" or "html"."""
    from nnship.errors import ReportError
    from nnship.validate import Report

    loaded = Report.load(path)
    if format == "markdown":
        return loaded.to_markdown()
    if format == "json":
        return loaded.to_json()
    if format == "html":
        from nnship.validate.render.html import render_html

        return render_html(loaded)
    raise ReportError(f"Unknown report format '{format}'; choose markdown, json or html")
