"""`nnship compile` and `nnship check`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.api._common import DataArg, onnx_specs, open_data_arg
from nnship.api.results import CheckResult

if TYPE_CHECKING:
    from pydantic import BaseModel

    from nnship.core import Artifact


def compile(  # noqa: A001 - the CLI command is called compile
    onnx_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    backend: str = "onnxruntime",
    precision: str | None = None,
    options: BaseModel | Mapping[str, Any] | None = None,
    calib_data: DataArg | None = None,
    calib_limit: int | None = None,
    exclude_names: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
) -> Artifact:
    """`nnship compile`: lower an ONNX model to a backend artifact.

    `backend` is "onnxruntime", "openvino" or "tensorrt" (aliases "ort", "ov", "trt");
    `out_dir` defaults to `build/<model stem>/<backend>`; `precision` None (default) is
    detected from the model (QDQ -> int8, FP16 weights -> fp16). `options` is the backend's
    options model (`OnnxRuntimeOptions`, `OpenVinoOptions`, `TensorRtOptions`) or a mapping of
    its fields (None values keep the defaults). `calib_data` (at most `calib_limit` samples)
    and the `exclude_*` lists are used by OpenVINO INT8 through NNCF only. Returns the
    `Artifact` (files, metadata, hashes of its input)."""
    from nnship.backends import canonical_backend
    from nnship.backends.compile import compile_model

    name = canonical_backend(backend)
    onnx_path = Path(onnx_path)
    out = Path(out_dir) if out_dir is not None else Path("build") / onnx_path.stem / name
    calib = None
    if calib_data is not None:
        calib = open_data_arg(calib_data, onnx_specs(onnx_path), limit=calib_limit)
    return compile_model(
        onnx_path,
        out,
        backend=name,
        precision=precision,
        options=options,
        calib_data=calib,
        exclude_names=exclude_names,
        exclude_op_types=exclude_op_types,
    )


def check(onnx_path: str | Path, *, target: str = "tensorrt") -> CheckResult:
    """`nnship check --target tensorrt`: lint an ONNX for a target without its runtime.
    Returns the `CheckResult` (findings naming the node and the rule; `passed` without errors)."""
    if target.lower() not in ("tensorrt", "trt"):
        from nnship.core.errors import BackendError

        raise BackendError(f"check supports --target tensorrt only, not '{target}'")
    from nnship.backends.tensorrt.check import check_tensorrt
    from nnship.backends.tensorrt.ops import TENSORRT_VERSION

    findings = check_tensorrt(onnx_path)
    return CheckResult(Path(onnx_path), "tensorrt", TENSORRT_VERSION, list(findings))
