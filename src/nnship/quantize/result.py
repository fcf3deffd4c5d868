"""What `quantize` returns: the written file, what stayed in float and why, what was reverted.

Results are plain data (`to_dict()` is JSON-serialisable) so the build report can list every
float node with its reason and compare runs captured on different machines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FloatNode:
    """A node left in floating point, and why ("Gemm with non-constant B", "excluded by user",
    "reverted: sensitivity", "extreme range: attention mask bias", ...)."""

    name: str
    op_type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class QuantizeResult:
    """The outcome of one `quantize` call.

    `reverted` holds one dict per node the accuracy-aware fallback put back into float:
    `{"node", "op_type", "sensitivity", "metric_after", "latency_ms_before", "latency_ms_after",
    "latency_cost_ms"}` (latencies are ONNX Runtime CPU medians at batch 1, milliseconds).
    `metrics` compares the quantized model with the float one on the evaluation data (when given):
    `top1_agreement` (0..1), `cosine` (mean per sample), `max_abs`, `accuracy_float`/`accuracy`
    (0..1, with labels) and `top1_drop` (percentage points).
    `method_selection` says how `method` was chosen: `{"mode": "explicit"}`, or for "auto"
    `{"mode": "auto", "chosen", "criterion", "data", "held_out", "samples", "candidates":
    [{"method", "top1_agreement", "cosine", "sqnr_db", "max_abs", "score", ...}], "seconds"}`
    (or `"skipped"` with the reason when there was no data to compare on).
    """

    path: Path
    precision: str
    profile: str | None
    method: str | None
    float_nodes: list[FloatNode] = field(default_factory=list)
    quantized_nodes: list[str] = field(default_factory=list)
    reverted: list[dict[str, Any]] = field(default_factory=list)
    applied_transforms: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    method_selection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "precision": self.precision,
            "profile": self.profile,
            "method": self.method,
            "float_nodes": [n.to_dict() for n in self.float_nodes],
            "quantized_nodes": list(self.quantized_nodes),
            "reverted": [dict(r) for r in self.reverted],
            "applied_transforms": [dict(t) for t in self.applied_transforms],
            "metrics": dict(self.metrics),
            "warnings": list(self.warnings),
            "details": dict(self.details),
            "method_selection": dict(self.method_selection),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizeResult:
        return cls(
            path=Path(data["path"]),
            precision=data["precision"],
            profile=data.get("profile"),
            method=data.get("method"),
            float_nodes=[FloatNode(**n) for n in data.get("float_nodes", [])],
            quantized_nodes=list(data.get("quantized_nodes", [])),
            reverted=[dict(r) for r in data.get("reverted", [])],
            applied_transforms=[dict(t) for t in data.get("applied_transforms", [])],
            metrics=dict(data.get("metrics", {})),
            warnings=list(data.get("warnings", [])),
            details=dict(data.get("details", {})),
            method_selection=dict(data.get("method_selection", {})),
        )

    def float_reasons(self) -> dict[str, str]:
        """Node name -> reason it stayed in float."""
        return {n.name: n.reason for n in self.float_nodes}

    def reverted_names(self) -> list[str | None]:
        """The nodes the accuracy-aware fallback put back into float, in revert order."""
        return [r.get("node") for r in self.reverted]

    def detail_summary(self, step: str) -> str | None:
        """The one-line summary a quantizer step wrote in `details` ("opset_conversion",
        "subnormals"), or None when the step recorded none."""
        entry = self.details.get(step)
        summary = entry.get("summary") if isinstance(entry, dict) else None
        return str(summary) if summary else None
