"""`[backends.onnxruntime]`: how ONNX Runtime opens a model (pydantic, `extra="forbid"`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
