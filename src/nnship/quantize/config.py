"""The recipe's `[quantize]` section (pydantic, `extra="forbid"`).

Units: `max_top1_drop` is percentage points, `min_cosine` is a cosine (-1..1), `percentile` is a
percent (0..100], `extreme_range` is an absolute activation value, latencies are milliseconds.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nnship.calibration.config import StatisticsConfig
from nnship.core.errors import QuantizationError

Precision = Literal["int8", "fp16", "dynamic-int8", "bf16"]
ProfileName = Literal["onnxruntime", "openvino", "tensorrt"]
Method = Literal["minmax", "percentile", "entropy", "mse"]
MethodChoice = Literal["auto", "minmax", "percentile", "entropy", "mse"]
Toggle = Literal["auto", "on", "off"]
WeightRounding = Literal["nearest", "adaround"]

PRECISIONS: tuple[str, ...] = ("int8", "fp16", "dynamic-int8", "bf16")
RUNTIME_PRECISIONS: tuple[str, ...] = ("bf16",)
"""Precisions a backend applies when it compiles the float model (OpenVINO's bf16 inference
precision): `nnship build` compiles the float ONNX for them, `quantize()` writes no file."""
PROFILES: tuple[str, ...] = ("onnxruntime", "openvino", "tensorrt")
METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy", "mse")
"""Range methods a quantized model can be built with."""
METHOD_CHOICES: tuple[str, ...] = ("auto", *METHODS)
"""What `method` accepts: a range method, or "auto" (choose one per model, see `selection`)."""
DEFAULT_METHOD: MethodChoice = "auto"
AUTO_METHODS: tuple[Method, ...] = ("percentile", "mse", "minmax", "entropy")
"""Candidates of `method = "auto"`, in tie-break order (the first of equals wins)."""
FALLBACK_METHOD: Method = "percentile"
"""What "auto" uses when there is no data to compare the candidates on (a table alone)."""


class ExcludeConfig(BaseModel):
    """Nodes the user keeps in float: exact node names, op types, or regular expressions matched
    (with `re.search`) against node names. Empty by default."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(default_factory=list)
    op_types: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression '{pattern}': {exc}") from exc
        return patterns

    def reason_for(self, name: str, op_type: str) -> str | None:
        """ "excluded by user (...)" when the node matches, else None."""
        if name in self.names:
            return "excluded by user (name)"
        if op_type in self.op_types:
            return f"excluded by user (op type {op_type})"
        for pattern in self.regex:
            if re.search(pattern, name):
                return f"excluded by user (regex '{pattern}')"
        return None


CalibrationSettings = StatisticsConfig
"""`[quantize.calibration]`: how statistics are collected when `quantize` gets calibration
data rather than a table. The same model `nnship calibrate` uses (`max_samples` 512,
`batch_size` 8, `num_bins` 2048, `min_samples` 32 (fewer only warns), `max_exposed_mb`)."""


class AdaRoundSettings(BaseModel):
    """AdaRound (`weight_rounding = "adaround"`, `nnship.quantize.adaround`) settings.

    Each layer is fitted on `rows` (default 4096) rows (input patch, float output) sampled
    from the output positions of at most `samples` calibration samples (default 64), with
    `iterations` Adam steps (default 250, learning rate `lr` 1e-3) on `batch_rows` rows each
    (default 512). The rounding regulariser (weight `reg_param` 0.01) starts after
    `warm_start` (0.2) of the steps with its exponent decaying from `beta_start` 20 to
    `beta_end` 2 (AIMET's defaults, except the far fewer iterations). `batch_size` is samples
    per ONNX Runtime call (default 8).
    """

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(default=64, gt=0)
    rows: int = Field(default=4096, gt=0)
    iterations: int = Field(default=250, ge=0)
    batch_rows: int = Field(default=512, gt=0)
    batch_size: int = Field(default=8, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    reg_param: float = Field(default=0.01, ge=0)
    beta_start: float = Field(default=20.0, gt=0)
    beta_end: float = Field(default=2.0, gt=0)
    warm_start: float = Field(default=0.2, ge=0, lt=1)


class QuantizeConfig(BaseModel):
    """Settings of the quantize stage.

    - `precisions`: what `nnship build` produces (default `["int8"]`); `quantize()` writes one.
      "bf16" is OpenVINO running the float model with bf16 inference precision, on CPUs that
      compute bf16 natively (avx512_bf16 / amx_bf16); other backends skip it with a note.
    - `profile`: backend whose Q/DQ conventions the INT8 model follows (default "onnxruntime").
    - `method`: activation range method (default "auto": quantize with each of
      `auto_methods` and keep the one closest to the float model on at most `auto_samples`
      samples of the evaluation data, else of held-out calibration data; see
      `nnship.quantize.selection`). "percentile" clips at `percentile` = 99.99 %.
    - `auto_methods`: candidates of "auto" (default percentile, mse, minmax, entropy; on equal
      scores the first wins). `auto_samples`: most samples "auto" compares on (default 512).
    - `per_channel`: per-channel symmetric INT8 weights on the output-channel axis (default on).
    - `exclude`: nodes kept in float by name, op type or regex.
    - `max_top1_drop` (percentage points; with labels accuracy drop, else 100 - top-1 agreement)
      and `min_cosine` (mean per-sample cosine of the first output): the accuracy budget of the
      fallback; both off by default. They need evaluation data.
    - `max_reverted`: most nodes the fallback may put back into float (default 16).
    - `sensitivity_samples`: calibration samples used to rank node sensitivity (default 64).
    - `equalization` / `smoothing`: cross-layer equalization (depthwise CNNs) and SmoothQuant
      (transformers); "auto" (default) applies each only when it measurably helps on the
      evaluation data, "on" always, "off" never. `smoothing_alpha`: the migration strength
      (0..1), or "auto" (default): chosen per layer on calibration data by the simulated
      INT8 output error of that layer (`nnship.calibration.smooth_search`).
    - `bias_correction`: empirical bias correction of the quantized model (Nagel et al. 2019,
      section 4.2) from calibration data, the last step; same "auto"/"on"/"off" rule.
    - `weight_rounding`: "nearest" (default) rounds every int8 weight to the nearest integer;
      "adaround" learns the rounding per layer on calibration data (AdaRound, Nagel et al.
      2020; settings in `adaround`), costing minutes, never latency.
    - `extreme_range`: activations whose calibrated |min| or |max| reaches this (default 1e4)
      stay in float (e.g. attention-mask biases built from the float32 minimum).
    - `keep_io_types`: FP16 keeps float32 inputs/outputs (default True).
    - `eval_samples`: most evaluation samples used for metrics and fallback (default 1000).
    """

    model_config = ConfigDict(extra="forbid")

    precisions: list[Precision] = Field(
        default_factory=lambda: list[Precision](["int8"]), min_length=1
    )
    profile: ProfileName = "onnxruntime"
    method: MethodChoice = DEFAULT_METHOD
    auto_methods: list[Method] = Field(
        default_factory=lambda: list[Method](AUTO_METHODS), min_length=1
    )
    auto_samples: int = Field(default=512, gt=0)
    percentile: float = Field(default=99.99, gt=0, le=100)
    per_channel: bool = True
    exclude: ExcludeConfig = Field(default_factory=ExcludeConfig)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    max_top1_drop: float | None = Field(default=None, ge=0, le=100)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    max_reverted: int = Field(default=16, ge=0)
    sensitivity_samples: int = Field(default=64, gt=0)
    equalization: Toggle = "auto"
    smoothing: Toggle = "auto"
    bias_correction: Toggle = "auto"
    smoothing_alpha: float | Literal["auto"] = "auto"
    weight_rounding: WeightRounding = "nearest"
    adaround: AdaRoundSettings = Field(default_factory=AdaRoundSettings)
    extreme_range: float = Field(default=1e4, gt=0)
    keep_io_types: bool = True
    eval_samples: int = Field(default=1000, gt=0)

    @field_validator("auto_methods")
    @classmethod
    def _unique(cls, methods: list[str]) -> list[str]:
        if len(set(methods)) != len(methods):
            raise ValueError(f"auto_methods lists a method twice: {methods}")
        return methods

    @field_validator("smoothing_alpha")
    @classmethod
    def _alpha_range(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and not 0.0 <= value <= 1.0:
            raise ValueError(f"smoothing_alpha must be in [0, 1] or 'auto', got {value}")
        return value

    @property
    def has_budget(self) -> bool:
        return self.max_top1_drop is not None or self.min_cosine is not None

    def for_precision(self, precision: str) -> QuantizeConfig:
        """A copy that produces only `precision`."""
        return make_config({**self.model_dump(), "precisions": [precision]})


def make_config(data: dict[str, Any] | None = None, **overrides: Any) -> QuantizeConfig:
    """Build a `QuantizeConfig` from a dict (plus keyword overrides; None values are dropped),
    raising `QuantizationError` that names the field and the accepted values."""
    merged = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return QuantizeConfig.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"[quantize] {where}: {err['msg']} (got {err.get('input')!r})")
        raise QuantizationError("; ".join(problems)) from exc
