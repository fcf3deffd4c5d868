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

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nnship.errors import BackendError

BackendName = Literal["onnxruntime", "openvino", "tensorrt"]

# Measured by bench/backends.py on the reference models (docs/backends.md): OpenVINO running
# nnship's QDQ ONNX (openvino profile) agreed with float as well as NNCF on the float IR or
# better in 5 of 6 comparisons, at latency within ~10% (each way faster on some models).
DEFAULT_OPENVINO_INT8_MODE: Literal["qdq", "nncf"] = "qdq"


class OnnxRuntimeOptions(BaseModel):
    """Options passed to `nnship.backends.onnxruntime.OnnxRuntimeRunner` when loading."""

    model_config = ConfigDict(extra="forbid")

    threads: int | None = Field(default=None, ge=1)
    """Intra-op threads; None lets ONNX Runtime choose (all physical cores)."""
    inter_op_threads: int | None = Field(default=None, ge=1)
    """Inter-op threads (parallel branches); None lets ONNX Runtime choose."""
    graph_optimization: Literal["disable", "disabled", "basic", "extended", "all"] = "all"
    providers: list[str] | None = None
    """Execution providers in priority order; None means CPUExecutionProvider."""
    allow_spinning: bool | None = None
    """Let idle threads spin (lower latency, busier CPU); None keeps nnship's default (off)."""


class OpenVinoOptions(BaseModel):
    """How OpenVINO compiles and runs a model.

    - `device`: "CPU" (default), "GPU", "NPU", "AUTO", "GPU.1", "HETERO:GPU,CPU", ...
    - `hint`: performance hint, "latency" (default) or "throughput".
    - `threads`: CPU inference threads; None lets OpenVINO choose.
    - `num_streams`: CPU streams; None lets the hint decide.
    - `cache_dir`: OpenVINO model cache (speeds up the second compile); None disables it.
    - `inference_precision`: "f32" (default) pins float math to f32 so drift against the float
      baseline is measured honestly (OpenVINO otherwise picks bf16/f16 on capable hardware);
      "bf16"/"f16" opt into reduced precision; "auto" leaves the device default.
    - `compress_to_fp16`: store IR weights as FP16 (halves the .bin). Off by default for float
      baselines; the "fp16" precision turns it on.
    - `int8_mode`: how an "int8" OpenVINO artifact is made: "qdq" converts nnship's QDQ ONNX,
      "nncf" quantizes the float IR with NNCF on the calibration data. "qdq" is the measured
      default (bench/backends.py).
    - `nncf_preset` / `nncf_model_type` / `nncf_subset_size` / `nncf_fast_bias_correction`:
      NNCF settings; model type "auto" picks "transformer" for attention models.
    """

    model_config = ConfigDict(extra="forbid")

    device: str = "CPU"
    hint: Literal["latency", "throughput"] = "latency"
    threads: int | None = Field(default=None, ge=1)
    num_streams: int | None = Field(default=None, ge=1)
    cache_dir: Path | None = None
    inference_precision: Literal["f32", "bf16", "f16", "auto"] = "f32"
    compress_to_fp16: bool = False
    int8_mode: Literal["qdq", "nncf"] = DEFAULT_OPENVINO_INT8_MODE
    nncf_preset: Literal["auto", "performance", "mixed"] = "auto"
    nncf_model_type: Literal["auto", "transformer", "cnn"] = "auto"
    nncf_subset_size: int = Field(default=300, ge=1)
    """Calibration samples NNCF uses (it takes the first ones)."""
    nncf_fast_bias_correction: bool = True

    @field_validator("device")
    @classmethod
    def _device_upper(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("device must not be empty")
        return value.upper()


class ShapeRange(BaseModel):
    """min/opt/max shape of one input in a TensorRT optimization profile."""

    model_config = ConfigDict(extra="forbid")

    min: list[int]
    opt: list[int]
    max: list[int]

    @model_validator(mode="after")
    def _ordered(self) -> ShapeRange:
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(
                f"min/opt/max must have the same rank, got {self.min}, {self.opt}, {self.max}"
            )
        for axis, (lo, mid, hi) in enumerate(zip(self.min, self.opt, self.max)):
            if lo < 1:
                raise ValueError(f"axis {axis}: dimensions must be >= 1, got min {lo}")
            if not lo <= mid <= hi:
                raise ValueError(f"axis {axis}: need min <= opt <= max, got {lo}, {mid}, {hi}")
        return self

    @classmethod
    def parse(cls, text: str) -> tuple[str, ShapeRange]:
        """Parse the CLI form `NAME:MIN,OPT,MAX` with shapes joined by 'x',
        e.g. `x:1x3x32x32,8x3x32x32,32x3x32x32`."""
        name, _, shapes = text.rpartition(":")
        parts = shapes.split(",")
        if not name or len(parts) != 3:
            raise ValueError(
                f"bad shape range '{text}': expected NAME:MIN,OPT,MAX, "
                "e.g. x:1x3x32x32,8x3x32x32,32x3x32x32"
            )
        try:
            dims = [[int(d) for d in p.lower().split("x")] for p in parts]
        except ValueError as exc:
            raise ValueError(f"bad shape range '{text}': dimensions must be integers") from exc
        return name, cls(min=dims[0], opt=dims[1], max=dims[2])


class TensorRtOptions(BaseModel):
    """How TensorRT builds an engine (and the build kit written beside it).

    - `workspace_mb`: builder workspace limit in MiB (default 1024).
    - `profiles`: optimization profiles, each mapping input name -> min/opt/max shape.
      Inputs left out get their batch axis (axis 0) from `min_batch`/`opt_batch`/`max_batch`;
      any other dynamic dimension without a range is an error.
    - `min_batch` / `opt_batch` / `max_batch`: batch range for dynamic batch axes
      (default 1 / 1 / 32).
    - `timing_cache`: timing cache file reused across builds (read if present, then updated);
      None keeps it in memory only.
    - `build_engine`: "auto" (default) builds where TensorRT and a CUDA GPU exist, else writes
      the build kit only; "always" fails without them; "never" writes the kit only.
    - `builder_optimization_level`: 0-5 (TensorRT's default is 3); None keeps the default.
    - `device_index`: CUDA device to build and run on (default 0).
    """

    model_config = ConfigDict(extra="forbid")

    workspace_mb: int = Field(default=1024, ge=1)
    profiles: list[dict[str, ShapeRange]] = Field(default_factory=list)
    min_batch: int = Field(default=1, ge=1)
    opt_batch: int = Field(default=1, ge=1)
    max_batch: int = Field(default=32, ge=1)
    timing_cache: Path | None = None
    build_engine: Literal["auto", "always", "never"] = "auto"
    builder_optimization_level: int | None = Field(default=None, ge=0, le=5)
    device_index: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _batch_order(self) -> TensorRtOptions:
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(
                "need min_batch <= opt_batch <= max_batch, got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )
        return self


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def resolve_backend_options(
    cls: type[OptionsT], backend: str, options: OptionsT | None = None, **overrides: Any
) -> OptionsT:
    """`options` (default `cls()`) with keyword overrides applied and validated.

    Overrides that are None are ignored, so CLI flags left unset keep the recipe's values.
    Raises `BackendError` naming the bad option as `[backends.<backend>] <field>: <reason>`.
    """
    base = (options or cls()).model_dump()
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(base)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or backend
        raise BackendError(f"[backends.{backend}] {field}: {first['msg']}") from exc


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
