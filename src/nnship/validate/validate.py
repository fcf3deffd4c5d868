"""`validate`: the float baseline against candidate runners on evaluation data -> `Report`.

Order of work: outputs are matched (by name, else by position), the task metric (if any) is
checked on the baseline's first batch (a metric that cannot be computed stops here, before
anything is judged), latency is measured per runner (so `first_run_ms` is each runner's real
first call), then one streamed accuracy pass runs every runner on each batch and accumulates
drift, classification and task metrics, then gates.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core import Artifact, DataSource, Runner
from nnship.core.data import first_samples
from nnship.core.environment import capture_environment
from nnship.core.errors import DataError
from nnship.core.fileio import file_size_bytes, sha256_file
from nnship.core.progress import track
from nnship.metrics.drift import (
    ClassificationAccumulator,
    DriftAccumulator,
    is_classification_output,
    match_outputs,
)
from nnship.metrics.latency import latency_batch, measure_latency, track_memory
from nnship.validate.config import Gates, LatencyConfig, ValidateConfig
from nnship.validate.gates import check_gates
from nnship.validate.outputs import OutputRecorder, SavedOutputsRunner
from nnship.validate.report import (
    DataInfo,
    MemoryStats,
    ModelInfo,
    OutputMetrics,
    Report,
    Row,
)
from nnship.validate.task import TaskScoring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowAnnotation:
    """What the caller knows about one candidate beyond the comparison (the build: what the
    quantizer kept in float and why): notes appended to its row, entries added to its `extra`."""

    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def artifact_size_bytes(path: Path) -> int:
    """Bytes a runner loads: the file (+ ONNX external data), an OpenVINO IR's `.xml` + `.bin`,
    or everything under a directory."""
    size = file_size_bytes(path)
    weights = path.with_suffix(".bin")
    if path.suffix.lower() == ".xml" and weights.is_file():
        size += weights.stat().st_size
    return size


def _candidate_row(
    label: str, runner: Runner, artifact: Artifact | None, annotation: RowAnnotation | None
) -> Row:
    row = _measured_row(label, runner, artifact)
    if annotation is not None:
        row.notes.extend(annotation.notes)
        row.extra.update(annotation.extra)
    return row


def _measured_row(label: str, runner: Runner, artifact: Artifact | None) -> Row:
    """A candidate's row before measuring: what the runner and the artifact say of it."""
    row = Row(label=label, runner=runner.name)
    if isinstance(runner, SavedOutputsRunner):
        manifest = runner.saved.manifest
        env = manifest.get("environment", {})
        row.source = f"saved:{runner.saved.path}"
        row.notes.append(
            f"outputs replayed from '{runner.saved.path}' (runner {manifest.get('runner')}, "
            f"captured {manifest.get('created', '?')} on {env.get('cpu_model', '?')} "
            f"{env.get('gpus') or ''}); latency not measured here"
        )
    if artifact is None:
        row.backend = runner.name.split(":")[0]
        return row
    row.backend, row.precision, row.device = artifact.backend, artifact.precision, artifact.device
    path = Path(artifact.path)
    row.path = str(path)
    if path.exists():
        row.size_bytes = artifact_size_bytes(path)
        if path.is_file():
            row.sha256 = sha256_file(path)
    row.extra["artifact"] = _jsonable(artifact.to_dict())
    notes = artifact.metadata.get("notes")
    if isinstance(notes, list):
        row.notes.extend(str(n) for n in notes)
    return row


def _measure(runner: Runner, data: DataSource, config: LatencyConfig, row: Row, label: str) -> None:
    with track_memory() as memory:
        for batch_size in config.batch_sizes:
            log.info("Timing %s at batch %d", label, batch_size)
            batch = latency_batch(data, batch_size)
            row.latency.append(measure_latency(runner, batch, config))
    row.run_memory = memory


def _classification_output(shapes: dict[str, tuple[int, ...]], task: str) -> str | None:
    if task == "regression":
        return None
    for name, shape in shapes.items():
        if is_classification_output(shape):
            return name
    if task == "classification":
        raise DataError(
            f"task='classification' but no baseline output is 2-D [N, C] logits with C >= 2: "
            f"outputs are { ({k: list(v) for k, v in shapes.items()}) }"
        )
    return None


def validate(
    baseline: Runner,
    candidates: dict[str, Runner],
    data: DataSource,
    *,
    config: ValidateConfig | None = None,
    gates: Gates | None = None,
    latency: LatencyConfig | None = None,
    artifacts: dict[str, Artifact] | None = None,
    measure_baseline_latency: bool = True,
    baseline_label: str = "baseline",
    model_source: str = "",
    model_fingerprint: str | None = None,
    cold_start: dict[str, tuple[float, MemoryStats]] | None = None,
    save_outputs_dir: Path | str | None = None,
    annotations: Mapping[str, RowAnnotation] | None = None,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    metric_base_dir: Path | str | None = None,
) -> Report:
    """Compare each candidate runner with the float baseline on `data`; return a `Report`.

    `config` defaults to `ValidateConfig()` (batch size 32, all samples, latency at batch 1 with
    200 timed runs, no gates); `gates` / `latency` override its sections. `artifacts` (by
    candidate label) add backend, precision, device, path, size and hash to the rows.
    `cold_start` (by label, "baseline" included) holds (load milliseconds, load memory) measured
    by the caller with `nnship.metrics.latency.timed_load`. With `save_outputs_dir`, every
    runner's outputs are saved there as `<label>.npz` + `<label>.json` (see `outputs.py`).
    `annotations` (by candidate label) add notes and `extra` entries to the candidates' rows;
    `notes` follow the validator's own in `report.notes`, and `extra` is `report.extra`, so the
    report comes back complete and no caller edits it. Runners replaying saved outputs get
    no latency.

    With a task metric (`config.metric`, `[validate.metric]`) every candidate row gets its
    values (`Row.task_metrics`), the baseline row those the family reads against labels, and
    `Report.task_metric` the configuration; relative paths of user functions and charset files
    resolve against `metric_base_dir` (default: the working directory). A metric that cannot
    be computed raises `MetricError` before any runner is timed or any candidate runs.
    Does not raise on a failed gate: read `report.passed`.
    """
    config = (config or ValidateConfig()).model_copy(deep=True)
    if gates is not None:
        config.gates = gates
    if latency is not None:
        config.latency = latency
    if not candidates:
        raise DataError("Nothing to validate: give at least one candidate")
    if baseline_label in candidates:
        raise DataError(f"Candidate label '{baseline_label}' is reserved for the baseline")
    annotations = annotations or {}
    unknown = sorted(set(annotations) - set(candidates))
    if unknown:
        raise DataError(f"Annotations for {unknown}, which are not candidates: {list(candidates)}")
    if config.max_samples:
        data = first_samples(data, config.max_samples)
    artifacts = artifacts or {}
    mapping = {
        label: match_outputs(baseline.output_names, runner.output_names, label=label)
        for label, runner in candidates.items()
    }
    base_row = Row(label=baseline_label, runner=baseline.name, backend=baseline.name.split(":")[0])
    if isinstance(baseline, SavedOutputsRunner):
        base_row = _measured_row(baseline_label, baseline, None)
    rows = {
        label: _candidate_row(label, r, artifacts.get(label), annotations.get(label))
        for label, r in candidates.items()
    }
    for label, (ms, memory) in (cold_start or {}).items():
        target = base_row if label == baseline_label else rows.get(label)
        if target is not None:
            target.cold_start_ms, target.load_memory = ms, memory
    bs = config.batch_size
    task = _check_task_metric(config, baseline, data, list(rows), metric_base_dir)

    if config.latency.enabled:
        if measure_baseline_latency and not isinstance(baseline, SavedOutputsRunner):
            _measure(baseline, data, config.latency, base_row, baseline_label)
        for label, runner in candidates.items():
            if not isinstance(runner, SavedOutputsRunner):
                _measure(runner, data, config.latency, rows[label], label)

    recorders: dict[str, OutputRecorder] = {}
    if save_outputs_dir is not None:
        recorders = {
            label: OutputRecorder(label, runner)
            for label, runner in [(baseline_label, baseline), *candidates.items()]
        }
    drift = {
        label: {name: DriftAccumulator(name) for name in baseline.output_names}
        for label in candidates
    }
    cls_name: str | None = None
    cls_acc: dict[str, ClassificationAccumulator] = {}
    total = math.ceil(data.num_samples / bs)
    for index, item in enumerate(track(data.iter_batches(bs), "validate", total=total)):
        ref = baseline.run(item.inputs)
        if index == 0:
            shapes = {k: tuple(np.asarray(v).shape) for k, v in ref.items()}
            cls_name = _classification_output(shapes, config.task)
            if cls_name is not None:
                cls_acc = {k: ClassificationAccumulator(cls_name) for k in [baseline_label, *rows]}
        if cls_name is not None:
            cls_acc[baseline_label].update(ref[cls_name], None, item.labels)
        if baseline_label in recorders:
            recorders[baseline_label].add(item.inputs, ref, item.labels)
        if task is not None:
            task.update_baseline(ref, item.inputs, item.labels)
        for label, runner in candidates.items():
            out = runner.run(item.inputs)
            for base_name, cand_name in mapping[label].items():
                if cand_name not in out or base_name not in ref:
                    raise DataError(
                        f"'{label}' returned outputs {list(out)}; expected '{cand_name}'"
                    )
                drift[label][base_name].update(ref[base_name], out[cand_name], label=label)
            if task is not None:
                renamed = {base: out[cand] for base, cand in mapping[label].items()}
                task.update(label, ref, renamed, item.inputs, item.labels)
            if cls_name is not None:
                cls_acc[label].update(ref[cls_name], out[mapping[label][cls_name]], item.labels)
            if label in recorders:
                recorders[label].add(item.inputs, out, item.labels)

    base_cls = cls_acc[baseline_label].result() if cls_name else None
    if base_cls is not None:
        # the baseline scores itself: agreement is trivially 100 %, so only accuracy is kept
        base_row.classification = base_cls.model_copy(
            update={"top1_agreement": None, "top5_agreement": None}
        )
    for label, row in rows.items():
        for base_name, acc in drift[label].items():
            row.outputs.append(
                OutputMetrics(
                    name=mapping[label][base_name],
                    baseline_name=base_name,
                    shape=list(acc.shape or ()),
                    **acc.result(),  # type: ignore[arg-type]
                )
            )
        if base_cls is not None:
            cls = cls_acc[label].result()
            if cls.accuracy is not None and base_cls.accuracy is not None:
                cls.top1_drop = base_cls.accuracy - cls.accuracy
            else:
                cls.top1_drop = 100.0 - (cls.top1_agreement or 0.0)
            row.classification = cls

    if task is not None:
        task.fill(base_row, rows)
    own_notes = []
    if cls_name is None and data.has_labels:
        own_notes.append("labels were given but no output is classification logits: ignored")
    report = Report(
        environment=capture_environment(config.latency.threads),
        model=ModelInfo(source=model_source, fingerprint=model_fingerprint),
        data=DataInfo(
            description=data.describe(),
            fingerprint=data.fingerprint(),
            num_samples=data.num_samples,
            has_labels=data.has_labels,
        ),
        task=("classification" if cls_name else "regression"),
        task_metric=task.describe() if task is not None else None,
        config=config.model_dump(mode="json"),
        baseline=base_row,
        rows=list(rows.values()),
        gates=check_gates(config.gates, list(rows.values())),
        notes=[*own_notes, *notes],
        extra=dict(extra or {}),
    )
    if save_outputs_dir is not None:
        fingerprint = report.data.fingerprint
        for label, recorder in recorders.items():
            recorder.data_fingerprint = fingerprint
            recorder.extra.update(model_source=model_source, model_fingerprint=model_fingerprint)
            recorder.save(Path(save_outputs_dir) / f"{_file_stem(label)}.npz")
    return report


def _check_task_metric(
    config: ValidateConfig,
    baseline: Runner,
    data: DataSource,
    labels: list[str],
    base_dir: Path | str | None,
) -> TaskScoring | None:
    """The task metric's scorers, checked on the baseline's first batch against itself (a
    `MetricError` here means nothing was judged); None without a metric."""
    if config.metric is None:
        return None
    task = TaskScoring(config.metric, labels, Path(base_dir) if base_dir is not None else None)
    first = next(iter(data.iter_batches(config.batch_size)), None)
    if first is None:
        raise DataError(f"Data {data.describe()} is empty: nothing to score the task metric on")
    task.check(baseline.run(first.inputs), first.inputs, first.labels)
    unknown = [g.metric for g in config.gates.task_gates() if g.metric not in task.names]
    if unknown:
        log.warning(
            "Task gates on %s will fail: the %s metric gives %s on this data",
            unknown, config.metric.kind, ", ".join(task.names) or "nothing",
        )  # fmt: skip
    return task


def _file_stem(label: str) -> str:
    """A file name for a row label ("onnxruntime/int8" -> "onnxruntime_int8")."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
