"""The recipe's `[backends]` section (pydantic, `extra="forbid"`).

```toml
[backends]
targets = ["onnxruntime", "openvino", "tensorrt"]

[backends.openvino]
device = "CPU"            # CPU, GPU, NPU, AUTO, ... (checked against the machine at load time)
hint = "latency"          # or "throughput"
threads = 2
int8_mode = "qdq"         # or "nncf"

[backends.tensorrt]
workspace_mb = 1024
timing_cache = "build/trt.timing.cache"

[[backends.tensorrt.profiles]]
input_ids = { min = [1, 16], opt = [8, 64], max = [32, 128] }
```

Units are in the field names: megabytes are MiB (2**20 bytes), paths are relative to the recipe.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nnship.backends.onnxruntime.options import OnnxRuntimeOptions
from nnship.backends.openvino.options import DEFAULT_OPENVINO_INT8_MODE, OpenVinoOptions
from nnship.backends.tensorrt.options import ShapeRange, TensorRtOptions

BackendName = Literal["onnxruntime", "openvino", "tensorrt"]


def _default_targets() -> list[BackendName]:
    return ["onnxruntime"]


class BackendsConfig(BaseModel):
    """Which backends `nnship build` lowers to (default: ONNX Runtime only) and their options."""

    model_config = ConfigDict(extra="forbid")

    targets: list[BackendName] = Field(default_factory=_default_targets, min_length=1)
    onnxruntime: OnnxRuntimeOptions = Field(default_factory=OnnxRuntimeOptions)
    openvino: OpenVinoOptions = Field(default_factory=OpenVinoOptions)
    tensorrt: TensorRtOptions = Field(default_factory=TensorRtOptions)

    @field_validator("targets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for name in value:
            if name in seen:
                raise ValueError(f"backend '{name}' is listed twice")
            seen.append(name)
        return value

    def options_for(self, backend: str) -> BaseModel:
        """The options model of one backend ("onnxruntime", "openvino" or "tensorrt")."""
        return getattr(self, backend)


__all__ = [
    "DEFAULT_OPENVINO_INT8_MODE",
    "BackendName",
    "BackendsConfig",
    "OnnxRuntimeOptions",
    "OpenVinoOptions",
    "ShapeRange",
    "TensorRtOptions",
]
