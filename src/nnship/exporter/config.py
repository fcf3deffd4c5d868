"""The recipe's `[export]` section: how a torch model becomes ONNX.

```toml
[export]
exporter = "dynamo"        # or "torchscript"
opset = 18
dynamic_batch = true       # axis 0 of every input (and output) is symbolic "batch"
dynamic_axes = { input_ids = { 1 = "sequence" }, attention_mask = { 1 = "sequence" } }
simplify = true            # onnxslim, kept only if the simplified model still verifies
rtol = 1e-3
atol = 1e-4
verify_samples = 2
```

This module imports neither torch nor onnx, so loading a recipe stays fast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Exporter = Literal["dynamo", "torchscript"]

DEFAULT_EXPORTER: Exporter = "dynamo"
"""torch.export-based exporter: the maintained one in torch >= 2.9, exports all reference
models (see docs/export.md for the measurement)."""

DEFAULT_OPSET = 18
"""The dynamo exporter's operators are written for opset 18 (lower opsets need a version
conversion that fails on e.g. ReduceMean); 18 is supported by ONNX Runtime, OpenVINO and
TensorRT 10."""

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-4
MIN_OPSET = 11
MAX_OPSET = 23


class ExportConfig(BaseModel):
    """Settings of `nnship.exporter.export_onnx` (the recipe's `[export]` section).

    - `exporter`: "dynamo" (default, `torch.onnx.export(dynamo=True)`) or "torchscript"
      (the legacy tracer).
    - `fallback`: if the chosen exporter fails (export, check or verification), try the other
      one. Off by default; when it happens it is logged as a warning and recorded in
      `ExportResult.fallback_reason`.
    - `opset`: ONNX opset of the default domain (default 18, range 11-23). An exporter that
      cannot produce it is an error, never a silent change.
    - `dynamic_batch`: make axis 0 of every input symbolic ("batch"). Default True.
    - `dynamic_axes`: further symbolic axes per input, e.g. `{"input_ids": {1: "sequence"}}`;
      the same name on two inputs means the same size.
    - `simplify`: run onnxslim after export and keep the result only if it passes the checker
      and verification. Default True.
    - `rtol` / `atol`: verification tolerance, element-wise
      `|onnx - torch| <= atol + rtol * |torch|` (numpy.allclose). Defaults 1e-3 / 1e-4.
    - `verify_samples`: number of input batches the ONNX model is compared on (default 2:
      the example inputs, then seeded random inputs like them). With a dynamic batch, batches
      hold 2 samples (3 if the example batch already has 2).
    """

    model_config = ConfigDict(extra="forbid")

    exporter: Exporter = DEFAULT_EXPORTER
    fallback: bool = False
    opset: int = Field(default=DEFAULT_OPSET, ge=MIN_OPSET, le=MAX_OPSET)
    dynamic_batch: bool = True
    dynamic_axes: dict[str, dict[int, str]] = Field(default_factory=dict)
    simplify: bool = True
    rtol: float = Field(default=DEFAULT_RTOL, ge=0.0)
    atol: float = Field(default=DEFAULT_ATOL, ge=0.0)
    verify_samples: int = Field(default=2, ge=1, le=64)

    @field_validator("dynamic_axes")
    @classmethod
    def _axes_valid(cls, value: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
        for tensor, axes in value.items():
            for axis, name in axes.items():
                if axis < 0:
                    raise ValueError(f"{tensor}: axis must be >= 0, got {axis}")
                if not name.isidentifier():
                    raise ValueError(
                        f"{tensor}: axis {axis} name '{name}' must be an identifier "
                        "(letters, digits, underscores)"
                    )
        return value
