"""`[backends.openvino]`: how OpenVINO compiles and runs a model (pydantic, `extra="forbid"`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Measured by bench/backends.py on the reference models (docs/backends.md): OpenVINO running
# nnship's QDQ ONNX (openvino profile) agreed with float as well as NNCF on the float IR or
# better in 5 of 6 comparisons, at latency within ~10% (each way faster on some models).
DEFAULT_OPENVINO_INT8_MODE: Literal["qdq", "nncf"] = "qdq"


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
