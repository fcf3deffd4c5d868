"""The public functions behind `nnship validate` and `nnship compare` (bench: `bench.py`).

They take paths and plain options (what a command line has), open models, data and artifacts,
and call `validate`, `measure_latency` and `compare_reports`. `nnship.api` re-exports them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nnship.backends import BACKEND_ALIASES
from nnship.backends.compile import guess_backend
from nnship.core import Artifact, DataSource, Runner, TensorSpec
from nnship.core.errors import BackendError, DataError, RecipeError
from nnship.metrics.latency import timed_load
from nnship.validate.compare import CompareThresholds, Comparison, compare_reports
from nnship.validate.config import ValidateConfig
from nnship.validate.outputs import SavedOutputsRunner
from nnship.validate.report import MemoryStats, Report, summarize_errors
from nnship.validate.validate import validate

log = logging.getLogger(__name__)

ONNX_BASELINE = "onnx/fp32"
"""The label of a baseline given as an ONNX file (its input shapes are the model's own)."""

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def parse_backend_options(tokens: Sequence[str]) -> dict[str, Any]:
    """`["--hint", "latency", "--num-streams=2", "--flag"]` or `["hint=latency"]` -> options.

    Keys lose leading dashes and use underscores; values that read as int, float or
    true/false become those types; a flag without a value is True.
    """
    options: dict[str, Any] = {}
    items = list(tokens)
    i = 0
    while i < len(items):
        token = items[i]
        if token.startswith("-"):
            key, eq, value = token.lstrip("-").partition("=")
            if not eq:
                if i + 1 < len(items) and not items[i + 1].startswith("--"):
                    value, i = items[i + 1], i + 1
                else:
                    value = "true"
        else:
            key, eq, value = token.partition("=")
            if not eq:
                raise DataError(f"Backend option '{token}' must look like KEY=VALUE or --key value")
        options[key.replace("-", "_")] = _coerce(value)
        i += 1
    return options


def options_for(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options for `backend`: unscoped keys, plus `BACKEND.key` ones scoped to it
    (`openvino.hint`, or `ov.hint`); options scoped to other backends are left out."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        scope, dot, name = key.rpartition(".")
        if not dot:
            out[key] = value
        elif BACKEND_ALIASES.get(scope.lower(), scope.lower()) == backend:
            out[name] = value
    return out


def _coerce(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _onnx_precision(path: Path) -> str:
    from nnship.onnx.graph import load_onnx, onnx_precision

    return onnx_precision(load_onnx(path, load_weights=False))


@dataclass
class OpenedRunner:
    """A runner opened from a path, the artifact describing it, and its cold-start cost."""

    runner: Runner
    artifact: Artifact
    cold_start_ms: float
    load_memory: MemoryStats


def open_runner(path: Path | str, *, backend: str | None = None, **options: Any) -> OpenedRunner:
    """Open an artifact path (`.onnx`, OpenVINO `.xml` or compile directory, TensorRT engine)
    with its backend (guessed from the path unless given); `options` go to `Backend.load`
    (e.g. `threads=2`, `hint="latency"`; keys scoped as `openvino.hint` reach only that
    backend, see `options_for`). Times the load (cold start, milliseconds)."""
    from nnship.backends import canonical_backend
    from nnship.backends.compile import open_artifact

    path = Path(path)
    if not path.exists():
        raise DataError(f"Artifact '{path}' does not exist")
    name = canonical_backend(backend or guess_backend(path))
    options = options_for(name, options)
    try:
        runner, ms, memory = timed_load(lambda: open_artifact(path, backend=name, options=options))
    except TypeError as exc:  # an option the backend's load/runner does not take
        if "argument" not in str(exc):
            raise
        raise BackendError(
            f"Backend '{name}' cannot load '{path}' with options {sorted(options)}: {exc}"
        ) from exc
    artifact = _artifact_for(path, name, runner)
    return OpenedRunner(runner, artifact, ms, memory)


def _artifact_for(path: Path, backend: str, runner: Runner) -> Artifact:
    meta = (path if path.is_dir() else path.parent) / "artifact.json"
    if meta.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError):
            artifact = Artifact.from_dict(json.loads(meta.read_text(encoding="utf-8")))
            if path.is_dir() or Path(artifact.path).name == path.name:
                artifact.path = meta.parent / Path(artifact.path).name
                return artifact
    precision = _onnx_precision(path) if path.suffix.lower() == ".onnx" else "fp32"
    device = runner.name.split(":", 1)[1].lower() if ":" in runner.name else "cpu"
    return Artifact(path=path, backend=backend, precision=precision, device=device)


def read_validate_section(recipe: Path | str) -> ValidateConfig:
    """The `[validate]` section of a recipe TOML file as a `ValidateConfig`."""
    path = Path(recipe)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RecipeError(f"Recipe '{path}' does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"Recipe '{path}' is not valid TOML: {exc}") from exc
    try:
        return ValidateConfig.model_validate(raw.get("validate", {}))
    except ValidationError as exc:
        raise RecipeError(f"{path}: [validate] {summarize_errors(exc)}") from exc


def _specs_from_data(data: DataSource) -> list[TensorSpec]:
    first = next(iter(data.iter_batches(1)), None)
    if first is None:
        raise DataError(f"Data {data.describe()} is empty")
    return [
        TensorSpec(name, ("batch", *arr.shape[1:]), arr.dtype.name)
        for name, arr in first.inputs.items()
    ]


def _unique(label: str, taken: set[str], path: Path) -> str:
    if label in taken:
        label = f"{label} ({path.name})"
    n = 2
    base = label
    while label in taken:
        label, n = f"{base} #{n}", n + 1
    taken.add(label)
    return label


def validate_models(
    data: Path | str | DataSource,
    candidates: Sequence[Path | str] = (),
    *,
    baseline: str | None = None,
    baseline_outputs: Path | str | None = None,
    candidate_outputs: Sequence[Path | str] = (),
    candidate_backends: Sequence[str] = (),
    inputs: Sequence[str | TensorSpec] | None = None,
    labels_key: str = "labels",
    weights: Path | str | None = None,
    trust_pickle: bool = False,
    config: ValidateConfig | None = None,
    backend_options: dict[str, Any] | None = None,
    save_outputs_dir: Path | str | None = None,
    metric_base_dir: Path | str | None = None,
) -> Report:
    """Open the baseline model source (or replay `baseline_outputs`), each candidate artifact
    (or replay each of `candidate_outputs`) and the evaluation data, then `validate`.

    `candidate_backends` is empty (guess from each path), one name for all, or one per
    candidate. `config.latency.threads` (default: the runtime's choice) applies to torch
    and every backend; `backend_options` go to every `Backend.load`. The task metric's
    relative user-function paths resolve against `metric_base_dir` (default: working dir).
    """
    from nnship.sources.data import open_data

    config = config or ValidateConfig()
    threads = config.latency.threads
    if baseline is None and baseline_outputs is None:
        raise DataError("Give a baseline: --baseline MODEL or --baseline-outputs SAVED.npz")
    if baseline is not None and baseline_outputs is not None:
        raise DataError("Give --baseline or --baseline-outputs, not both")
    if len(candidate_backends) not in (0, 1, len(candidates)):
        raise DataError(
            f"{len(candidate_backends)} --candidate-backend values for {len(candidates)} "
            "candidates: give none, one for all, or one per candidate"
        )
    with contextlib.ExitStack() as stack:
        cold: dict[str, tuple[float, MemoryStats]] = {}
        model_source, fingerprint = "", None
        if baseline is not None:
            base_runner, base_label, dataset, fingerprint, cold_ms, mem = _open_baseline(
                baseline, data, labels_key, inputs, weights, trust_pickle, threads
            )
            model_source = str(baseline)
            cold[base_label] = (cold_ms, mem)
        else:
            base_runner = SavedOutputsRunner(Path(baseline_outputs))  # type: ignore[arg-type]
            base_label = str(base_runner.saved.label)
            extra = base_runner.saved.manifest.get("extra", {})
            model_source = str(extra.get("model_source", ""))
            fingerprint = extra.get("model_fingerprint")
            dataset = open_data(data, input_specs=base_runner.input_specs, labels_key=labels_key)
        stack.callback(base_runner.close)

        runners: dict[str, Runner] = {}
        artifacts: dict[str, Artifact] = {}
        taken = {base_label}
        options = dict(backend_options or {})
        if threads is not None:
            options.setdefault("threads", threads)
        for i, path in enumerate(candidates):
            name = (
                candidate_backends[i if len(candidate_backends) > 1 else 0]
                if candidate_backends
                else None
            )
            opened = open_runner(path, backend=name, **options)
            stack.callback(opened.runner.close)
            label = _unique(opened.artifact.label, taken, Path(path))
            runners[label], artifacts[label] = opened.runner, opened.artifact
            cold[label] = (opened.cold_start_ms, opened.load_memory)
        for path in candidate_outputs:
            replay = SavedOutputsRunner(Path(path))
            runners[_unique(f"saved/{replay.saved.label}", taken, Path(path))] = replay
        if not runners:
            raise DataError("Nothing to validate: give --candidate or --candidate-outputs")
        # the runners of model files: a torch baseline's shapes are the example's, not fixed
        models = {base_label: base_runner} if base_label == ONNX_BASELINE else {}
        models.update((label, runners[label]) for label in artifacts)
        config = at_fixed_batch(config, models, dataset.num_samples)
        report = validate(
            base_runner,
            runners,
            dataset,
            config=config,
            artifacts=artifacts,
            baseline_label=base_label,
            model_source=model_source,
            model_fingerprint=fingerprint,
            cold_start=cold,
            save_outputs_dir=save_outputs_dir,
            metric_base_dir=metric_base_dir,
        )
    return report


def _open_baseline(
    source: str,
    data: Path | str | DataSource,
    labels_key: str,
    inputs: Sequence[str | TensorSpec] | None,
    weights: Path | str | None,
    trust_pickle: bool,
    threads: int | None,
) -> tuple[Runner, str, DataSource, str | None, float, MemoryStats]:
    """(runner, label, evaluation data, model fingerprint, load ms, load memory). A factory
    loaded without `inputs` takes its input names/shapes/dtypes from the data."""
    from nnship.sources.data import open_data
    from nnship.sources.models import load_model

    loaded, load_ms, memory = timed_load(
        lambda: load_model(source, inputs=inputs, weights=weights, trust_pickle=trust_pickle)
    )
    specs = list(loaded.input_specs)
    dataset = open_data(data, input_specs=specs or None, labels_key=labels_key)
    specs = specs or _specs_from_data(dataset)
    if loaded.module is not None:
        from nnship.backends.torch_runner import TorchRunner

        runner, label = TorchRunner(loaded.module, specs, threads=threads), "torch/fp32"
        return runner, label, dataset, loaded.fingerprint, load_ms, memory
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    runner, ms, _ = timed_load(lambda: OnnxRuntimeRunner(loaded.onnx_path, threads=threads))
    return runner, ONNX_BASELINE, dataset, loaded.fingerprint, load_ms + ms, memory


def fixed_batch_size(specs: Sequence[TensorSpec]) -> int | None:
    """N when axis 0 of every input is the fixed size N (the model takes batches of N only),
    else None (a symbolic batch axis, or fixed sizes that differ: not a batch axis)."""
    firsts = {spec.shape[0] if spec.shape else None for spec in specs}
    size = firsts.pop() if len(firsts) == 1 else None
    return size if isinstance(size, int) and size > 0 else None


def at_fixed_batch(
    config: ValidateConfig, models: Mapping[str, Runner], num_samples: int
) -> ValidateConfig:
    """`config` for `models` (label -> runner of a model file) that fix their batch size N:
    the accuracy pass and the latency at batch N, and the samples cut to a multiple of N; each
    change is logged. Models fixing different sizes are a `DataError`; when none fixes one,
    `config` is returned as it is."""
    fixed = {label: n for label, r in models.items() if (n := fixed_batch_size(r.input_specs))}
    if not fixed:
        return config
    if len(set(fixed.values())) > 1:
        sizes = ", ".join(f"{label} {n}" for label, n in fixed.items())
        raise DataError(f"The models fix different batch sizes ({sizes}): no batch fits all")
    size = next(iter(fixed.values()))
    who = f"{' and '.join(fixed)} fix{'es' if len(fixed) == 1 else ''} the batch size at {size}"
    update: dict[str, Any] = {}
    if config.batch_size != size:
        log.info("%s: validating at batch size %d (not %d)", who, size, config.batch_size)
        update["batch_size"] = size
    if config.latency.enabled and config.latency.batch_sizes != [size]:
        log.info("%s: timing at batch size %d (not %s)", who, size, config.latency.batch_sizes)
        update["latency"] = config.latency.model_copy(update={"batch_sizes": [size]})
    used = min(num_samples, config.max_samples or num_samples)
    if used % size:
        if used < size:
            raise DataError(f"{who}; the data has {used} sample(s)")
        log.info("%s: the last %d of %d samples are left out", who, used % size, used)
        update["max_samples"] = used - used % size
    return config.model_copy(update=update)


def compare_report_files(
    stored: Path | str,
    current: Path | str,
    thresholds: CompareThresholds | None = None,
    *,
    allow_mismatch: bool = False,
    allow_hardware_mismatch: bool = False,
    allow_metric_mismatch: bool = False,
) -> Comparison:
    """Load two report files and `compare_reports` them (stored = the committed baseline)."""
    return compare_reports(
        Report.load(stored),
        Report.load(current),
        thresholds,
        allow_mismatch=allow_mismatch,
        allow_hardware_mismatch=allow_hardware_mismatch,
        allow_metric_mismatch=allow_metric_mismatch,
        old_name=str(stored),
        new_name=str(current),
    )
