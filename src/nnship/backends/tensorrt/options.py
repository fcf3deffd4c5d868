"""`[backends.tensorrt]`: how TensorRT builds an engine and its build kit (pydantic,
`extra="forbid"`), and the min/opt/max shape ranges of its optimization profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
