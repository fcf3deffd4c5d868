"""`nnship validate`, `bench`, `compare`, `explain` and `report`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.api._common import DataArg, ModelArg, open_data_arg
from nnship.api.results import RenderedReport

if TYPE_CHECKING:
    from pydantic import BaseModel

    from nnship.core import Artifact, Runner, TensorSpec
    from nnship.validate.bench import BenchResult
    from nnship.validate.compare import CompareThresholds, Comparison
    from nnship.validate.config import LatencyConfig, ValidateConfig
    from nnship.validate.explain.layers import Explanation
    from nnship.validate.report import Report


def validate(
    baseline: Runner | ModelArg | None,
    candidates: Mapping[str, Runner] | Sequence[str | Path],
    data: DataArg,
    *,
    config: ValidateConfig | None = None,
    latency: LatencyConfig | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
    baseline_outputs: str | Path | None = None,
    candidate_outputs: Sequence[str | Path] = (),
    candidate_backends: Sequence[str] = (),
    inputs: Sequence[str | TensorSpec] | None = None,
    labels_key: str = "labels",
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    backend_options: Mapping[str, Any] | None = None,
    save_outputs_dir: str | Path | None = None,
    metric: BaseModel | Mapping[str, Any] | str | Path | None = None,
    task_gates: Mapping[str, str] | None = None,
    metric_base_dir: str | Path | None = None,
) -> Report:
    """`nnship validate`: compare candidates with the float baseline on `data`; returns the
    `Report` (accuracy, drift per output, task metric values, latency in milliseconds, gate
    verdicts).

    Either runners (`baseline` a `Runner`, `candidates` {label: `Runner`}, `data` a path or a
    `DataSource`), or paths as on the command line: `baseline` a model source (or None with
    `baseline_outputs`, saved outputs), `candidates` artifact paths (backend guessed from the
    path unless `candidate_backends` names it), `backend_options` passed to the backends.
    `config` defaults to `ValidateConfig()` (batch 32, latency at batch 1, 200 runs, no
    gates); `latency` replaces its latency section. Given paths, models that fix their batch
    size N (axis 0 of every input of an ONNX baseline or a candidate artifact is N) are
    validated and timed at batch N on a multiple of N samples, and the log says so.

    `metric` replaces `config.metric` (`[validate.metric]`): a task metric config
    (`nnship.metrics.task.config`), its table (`{"kind": "detection", "score_threshold":
    0.3}`), or a TOML file holding one (`[validate.metric]`, `[metric]` or the keys at its top).
    `task_gates` adds bounds on its values (`{"det_f1": ">= 0.95"}`). Relative paths of user
    functions and charset files resolve against `metric_base_dir` (default: the metric file's
    folder, else the working directory). A metric that cannot be computed on the baseline's
    outputs raises `MetricError` (exit 2) before any artifact is judged."""
    from nnship.core import Runner
    from nnship.validate.config import ValidateConfig
    from nnship.validate.metric_source import read_metric_file, with_task_metric

    config = config or ValidateConfig()
    if latency is not None:
        config = config.model_copy(update={"latency": latency})
    if isinstance(metric, str | Path):
        if metric_base_dir is None:
            metric_base_dir = Path(metric).parent
        metric = read_metric_file(metric)
    config = with_task_metric(config, metric, task_gates)
    if isinstance(baseline, Runner):
        from nnship.validate.validate import validate as _validate

        runners = dict(candidates) if isinstance(candidates, Mapping) else {}
        source = open_data_arg(data, baseline.input_specs)
        return _validate(
            baseline,
            runners,
            source,
            config=config,
            artifacts=dict(artifacts) if artifacts else None,
            save_outputs_dir=save_outputs_dir,
            metric_base_dir=metric_base_dir,
        )
    if isinstance(candidates, Mapping):
        from nnship.core.errors import DataError

        raise DataError(
            "validate: candidates given as runners need a Runner baseline; give artifact "
            "paths to validate against a model source"
        )
    from nnship.validate.commands import validate_models

    return validate_models(
        data,
        [Path(c) for c in candidates],
        baseline=str(baseline) if baseline is not None else None,
        baseline_outputs=baseline_outputs,
        candidate_outputs=list(candidate_outputs),
        candidate_backends=list(candidate_backends),
        inputs=list(inputs) if inputs else None,
        labels_key=labels_key,
        weights=weights,
        trust_pickle=trust_pickle,
        config=config,
        backend_options=dict(backend_options or {}),
        save_outputs_dir=save_outputs_dir,
        metric_base_dir=metric_base_dir,
    )


def bench(
    path: str | Path,
    *,
    backend: str | None = None,
    latency: LatencyConfig | None = None,
    data: str | Path | None = None,
    inputs: Sequence[str | TensorSpec] | None = None,
    backend_options: Mapping[str, Any] | None = None,
) -> BenchResult:
    """`nnship bench`: latency, throughput, cold start and memory of one artifact (.onnx,
    OpenVINO .xml or compile folder, TensorRT engine). `latency` defaults to `LatencyConfig()`
    (batch 1, 200 timed runs); inputs are the first samples of `data`, else example inputs
    shaped by `inputs` or the model. Milliseconds throughout. Returns the `BenchResult`."""
    from nnship.validate.bench import bench as _bench

    return _bench(
        path,
        backend=backend,
        latency=latency,
        data=data,
        inputs=list(inputs) if inputs else None,
        backend_options=dict(backend_options or {}),
    )


def compare(
    baseline: Report | str | Path,
    current: Report | str | Path,
    thresholds: CompareThresholds | None = None,
    *,
    allow_mismatch: bool = False,
    allow_hardware_mismatch: bool = False,
    allow_metric_mismatch: bool = False,
) -> Comparison:
    """`nnship compare`: check a new report against a stored one (reports or their JSON
    paths) under `thresholds` (default `CompareThresholds()`; task metric values by name in
    `max_task_drop`). Reports of other models/data, of differently configured task metrics
    (or, for latency, other hardware) are refused unless allowed. Returns the `Comparison`."""
    from nnship.validate import Report
    from nnship.validate.compare import compare_reports

    def as_report(value: Report | str | Path) -> Report:
        return value if isinstance(value, Report) else Report.load(value)

    return compare_reports(
        as_report(baseline),
        as_report(current),
        thresholds,
        allow_mismatch=allow_mismatch,
        allow_hardware_mismatch=allow_hardware_mismatch,
        allow_metric_mismatch=allow_metric_mismatch,
    )


def explain(
    float_model: str | Path,
    quantized_model: str | Path,
    data: DataArg,
    *,
    max_samples: int | None = None,
    batch_size: int | None = None,
    label: str | None = None,
    min_coverage: float | None = None,
    threads: int | None = None,
    attach_to: str | Path | None = None,
) -> Explanation:
    """`nnship explain`: rank the layers of `quantized_model` by the drift each adds against
    `float_model` on `data`. Unset numbers keep `nnship.validate.explain.layers.explain`'s defaults.
    `attach_to` (a report JSON) gets the explanation attached. Returns the `Explanation`."""
    from nnship.validate.explain import layers
    from nnship.validate.explain.layers import attach_layer_drift
    from nnship.validate.explain.layers import explain as _explain

    result = _explain(
        float_model,
        quantized_model,
        data,
        max_samples=layers.DEFAULT_MAX_SAMPLES if max_samples is None else max_samples,
        batch_size=layers.DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        artifact=label,
        min_coverage=layers.DEFAULT_MIN_COVERAGE if min_coverage is None else min_coverage,
        threads=threads,
    )
    if attach_to is not None:
        from nnship.validate.render.markdown import save_with_markdown
        from nnship.validate.report import Report

        save_with_markdown(attach_layer_drift(Report.load(attach_to), result), attach_to)
    return result


def report(
    path: str | Path,
    *,
    format: str = "markdown",  # noqa: A002
    html: str | Path | None = None,
    markdown: str | Path | None = None,
) -> RenderedReport:
    """`nnship report`: load a saved report JSON and render it as "markdown" (default), "json"
    or "html" (`text`); `html`/`markdown` also write those renderings to files. An unknown
    `format` raises `ReportError` before anything is read or written."""
    from nnship.core.errors import ReportError
    from nnship.validate import Report

    if format not in ("markdown", "json", "html"):
        raise ReportError(f"Unknown report format '{format}'; choose markdown, json or html")
    from nnship.validate.render.html import render_html, render_report_files

    if html is not None or markdown is not None:
        loaded = render_report_files(path, html=html, markdown=markdown)
    else:
        loaded = Report.load(path)
    if format == "markdown":
        from nnship.validate.render.markdown import report_markdown

        text = report_markdown(loaded)
    elif format == "json":
        text = loaded.to_json()
    else:
        text = render_html(loaded)
    written = {k: Path(v) for k, v in (("html", html), ("markdown", markdown)) if v is not None}
    return RenderedReport(loaded, format, text, written)
