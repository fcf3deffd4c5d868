"""The compile stage: ONNX -> backend artifacts, and artifacts -> runners for one report.

- `compile_model(onnx, out_dir, backend=...)`: one artifact (what `nnship compile` calls).
- `compile_targets(float_onnx, out_dir, config, quantized=...)`: every (backend, precision)
  the recipe's `[backends]` asks for, under `out_dir/<backend>/<precision>/`.
- `load_runners(artifacts, config)`: a Runner per artifact, labelled "backend/precision", for
  `nnship.validate.validate(baseline, runners, data)`; artifacts that cannot run here (a
  TensorRT build kit without an engine) are skipped with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nnship.backends import canonical_backend, get_backend
from nnship.backends.config import BackendsConfig
from nnship.core import Artifact, DataSource, Runner
from nnship.core.errors import BackendError

log = logging.getLogger(__name__)

_SUFFIX_BACKENDS = {
    ".onnx": "onnxruntime",
    ".xml": "openvino",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".trt": "tensorrt",
}


def compile_model(
    onnx_path: Path | str,
    out_dir: Path | str,
    *,
    backend: str,
    precision: str | None = None,
    config: BackendsConfig | None = None,
    options: BaseModel | Mapping[str, Any] | None = None,
    calib_data: DataSource | None = None,
    exclude_names: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
) -> Artifact:
    """Compile one ONNX for one backend into `out_dir`; returns the Artifact.

    `precision` None (default) is detected from the ONNX. The backend's options are `options`
    when it is an options model, else `config`'s (default: `BackendsConfig()` defaults) with
    the mapping `options` (device="GPU", threads=2, workspace_mb=2048, ...; None values keep
    the configured one) applied. `calib_data` and the `exclude_*` lists are used by OpenVINO's
    NNCF INT8 path only. The guards live in `Backend.compile`.
    """
    name = canonical_backend(backend)
    impl = get_backend(name)
    if isinstance(options, BaseModel):
        opts, overrides = options, {}
    else:
        opts, overrides = (config or BackendsConfig()).options_for(name), dict(options or {})
    return impl.compile(
        Path(onnx_path),
        Path(out_dir),
        opts,
        precision=precision,
        calib_data=calib_data,
        exclude_names=exclude_names,
        exclude_op_types=exclude_op_types,
        exclude_patterns=exclude_patterns,
        **overrides,
    )


def _source_for(
    backend: str, precision: str, quantized: Mapping[str, Path | Mapping[str, Path]]
) -> Path | None:
    entry = quantized.get(precision)
    if entry is None or isinstance(entry, (str, Path)):
        return Path(entry) if entry is not None else None
    return Path(entry[backend]) if backend in entry else None


def compile_targets(
    float_onnx: Path | str,
    out_dir: Path | str,
    config: BackendsConfig,
    *,
    quantized: Mapping[str, Path | Mapping[str, Path]] | None = None,
    calib_data: DataSource | None = None,
    exclude_names: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
) -> list[Artifact]:
    """Compile the float ONNX and each quantized ONNX for every backend in `config.targets`.

    `quantized` maps a precision to one ONNX for all backends, or to {backend: ONNX} when the
    quantization profiles differ per backend (e.g. {"int8": {"openvino": ..., "tensorrt":
    ...}, "fp16": fp16_path}). OpenVINO INT8 in "nncf" mode quantizes `float_onnx` with
    `calib_data` instead (falling back to the QDQ ONNX, with a warning, without data).
    Artifacts land in `out_dir/<backend>/<precision>/`, in target order, fp32 first.
    """
    quantized = dict(quantized or {})
    precisions = ["fp32", *[p for p in quantized if p != "fp32"]]
    artifacts = []
    for backend in config.targets:
        for precision in precisions:
            source = Path(float_onnx) if precision == "fp32" else None
            data = None
            if precision != "fp32":
                source = _source_for(backend, precision, quantized)
                if backend == "openvino" and precision == "int8":
                    source, data = _openvino_int8_source(config, float_onnx, source, calib_data)
            if source is None:
                log.info("No %s ONNX for %s: skipped", precision, backend)
                continue
            artifacts.append(
                compile_model(
                    source,
                    Path(out_dir) / backend / precision,
                    backend=backend,
                    precision=precision,
                    config=config,
                    calib_data=data,
                    exclude_names=exclude_names,
                    exclude_op_types=exclude_op_types,
                    exclude_patterns=exclude_patterns,
                )
            )
    return artifacts


def _openvino_int8_source(
    config: BackendsConfig,
    float_onnx: Path | str,
    qdq: Path | None,
    calib_data: DataSource | None,
) -> tuple[Path | None, DataSource | None]:
    if config.openvino.int8_mode == "nncf":
        if calib_data is not None:
            return Path(float_onnx), calib_data
        if qdq is not None:
            log.warning("OpenVINO int8_mode 'nncf' needs calibration data: using the QDQ ONNX")
    return qdq, None


def runner_options(backend: str, config: BackendsConfig | None) -> dict[str, Any]:
    """Keyword options `get_backend(backend).load(...)` takes from the recipe's section."""
    config = config or BackendsConfig()
    if backend == "onnxruntime":
        opts = config.onnxruntime.model_dump()
        return {k: v for k, v in opts.items() if v is not None}
    if backend == "openvino":
        keys = ("device", "hint", "threads", "num_streams", "cache_dir", "inference_precision")
        return {k: getattr(config.openvino, k) for k in keys}
    if backend == "tensorrt":
        return {"device_index": config.tensorrt.device_index}
    raise BackendError(f"Unknown backend '{backend}'")


def guess_backend(path: Path) -> str:
    """The backend for an artifact path: by `artifact.json` in a directory, else by suffix."""
    if path.is_dir():
        meta = path / "artifact.json"
        try:
            return str(json.loads(meta.read_text(encoding="utf-8"))["backend"])
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(
                f"'{path}' is a directory without a readable artifact.json; pass the model file "
                "or --candidate-backend/--backend"
            ) from exc
    backend = _SUFFIX_BACKENDS.get(path.suffix.lower())
    if backend is None:
        raise BackendError(
            f"Cannot tell the backend of '{path}' from its suffix; pass --candidate-backend/"
            f"--backend ({', '.join(sorted(set(_SUFFIX_BACKENDS.values())))})"
        )
    return backend


def open_artifact(
    artifact: Artifact | Path | str,
    *,
    backend: str | None = None,
    config: BackendsConfig | None = None,
    options: Mapping[str, Any] | None = None,
) -> Runner:
    """Open an artifact (or an artifact path: `.onnx`, OpenVINO `.xml` or compile folder,
    TensorRT engine) as a Runner: the one way nnship turns an artifact into a runner.

    The backend is the artifact's, else `backend`, else guessed from the path. Load options
    are those `config`'s section gives that backend (see `runner_options`; none without
    `config`), then `options` on top. Close the runner when done.
    """
    if isinstance(artifact, Artifact):
        name = artifact.backend
    else:
        artifact = Path(artifact)
        name = backend or guess_backend(artifact)
    name = canonical_backend(name)
    merged = runner_options(name, config) if config is not None else {}
    merged.update(options or {})
    return get_backend(name).load(artifact, **merged)


def load_runners(
    artifacts: Sequence[Artifact], config: BackendsConfig | None = None
) -> tuple[dict[str, Runner], dict[str, str]]:
    """Open every artifact as a Runner labelled `artifact.label` ("openvino/int8", ...).

    Returns (runners, skipped): TensorRT artifacts without an engine (a build kit only) and
    artifacts whose runtime is missing are skipped with the reason, so one report still
    covers every backend that can run here. Close the runners when done.
    """
    runners: dict[str, Runner] = {}
    skipped: dict[str, str] = {}
    for artifact in artifacts:
        label = artifact.label
        if label in runners:
            label = f"{label}@{artifact.device}"
        if artifact.backend == "tensorrt" and not artifact.metadata.get("engine_built"):
            skipped[label] = artifact.metadata.get("engine_skipped_reason") or "no engine"
            continue
        try:
            runners[label] = open_artifact(artifact, config=config or BackendsConfig())
        except BackendError as exc:
            if artifact.backend != "tensorrt":
                raise
            skipped[label] = str(exc)
    return runners, skipped
