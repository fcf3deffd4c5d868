"""The compile stage: ONNX -> backend artifacts, and artifacts -> runners for one report.

- `compile_model(onnx, out_dir, backend=...)`: one artifact (what `nnship compile` calls).
- `compile_targets(float_onnx, out_dir, config, quantized=...)`: every (backend, precision)
  the recipe's `[backends]` asks for, under `out_dir/<backend>/<precision>/`.
- `load_runners(artifacts, config)`: a Runner per artifact, labelled "backend/precision", for
  `nnship.validate.validate(baseline, runners, data)`; artifacts that cannot run here (a
  TensorRT build kit without an engine) are skipped with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnship.backends import get_backend
from nnship.backends.config import BackendsConfig
from nnship.core import Artifact, DataSource, Runner
from nnship.errors import BackendError

log = logging.getLogger(__name__)

_ALIASES = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}


def canonical_backend(name: str) -> str:
    """ "ov" -> "openvino", "TensorRT" -> "tensorrt", ... (unknown names raise BackendError)."""
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in ("onnxruntime", "openvino", "tensorrt"):
        raise BackendError(f"Unknown backend '{name}'; choose onnxruntime, openvino or tensorrt")
    return key


def compile_model(
    onnx_path: Path | str,
    out_dir: Path | str,
    *,
    backend: str,
    precision: str | None = None,
    config: BackendsConfig | None = None,
    calib_data: DataSource | None = None,
    exclude_names: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
    **overrides: Any,
) -> Artifact:
    """Compile one ONNX for one backend into `out_dir`; returns the Artifact.

    `precision` None (default) is detected from the ONNX. `config` gives the backend's options
    (default: `BackendsConfig()` defaults); keyword `overrides` replace single options
    (device="GPU", threads=2, workspace_mb=2048, ...). `calib_data` and the `exclude_*` lists
    are used by OpenVINO's NNCF INT8 path only.
    """
    name = canonical_backend(backend)
    options = (config or BackendsConfig()).options_for(name)
    impl: Any = get_backend(name)  # the concrete class: its compile takes precision=None
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if name == "openvino":
        return impl.compile(
            onnx_path,
            out_dir,
            precision=precision,
            options=options,
            calib_data=calib_data,
            exclude_names=exclude_names,
            exclude_op_types=exclude_op_types,
            exclude_patterns=exclude_patterns,
            **overrides,
        )
    if name == "tensorrt":
        return impl.compile(onnx_path, out_dir, precision=precision, options=options, **overrides)
    kwargs = {k: v for k, v in options.model_dump().items() if v is not None}
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if precision is not None:
        kwargs["precision"] = precision
    return impl.compile(onnx_path, out_dir, **kwargs)


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
            backend = get_backend(artifact.backend)
            runners[label] = backend.load(artifact, **runner_options(artifact.backend, config))
        except BackendError as exc:
            if artifact.backend != "tensorrt":
                raise
            skipped[label] = str(exc)
    return runners, skipped
