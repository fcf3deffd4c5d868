"""Result objects of the API functions that have no result type of their own.

Every API function returns an object with `to_dict()` (JSON-able); the CLI prints it or writes
it with `--json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the API imports no stage package before a function runs
    from torch import nn

    from nnship.backends.tensorrt.check import Finding
    from nnship.compress.distill import DistillResult
    from nnship.compress.prune import PruneResult
    from nnship.validate.report import Report


@dataclass
class PruneReport:
    """What `api.prune` did: the pruned module (also written to `output`), its `PruneResult`
    (for several steps: the last step's, with "before" counts of the first), and the optional
    latency (milliseconds, torch CPU, batch 1) and evaluation measurements."""

    source: str
    output: Path
    result: PruneResult
    """The `nnship.compress.PruneResult`."""
    torch_latency_ms: dict[str, float] | None = None
    eval: dict[str, dict[str, float]] | None = None

    @property
    def module(self) -> nn.Module:
        return self.result.module

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "output": str(self.output),
            **self.result.to_dict(),
        }
        if self.torch_latency_ms is not None:
            out["torch_latency_ms"] = self.torch_latency_ms
        if self.eval is not None:
            out["eval"] = self.eval
        return out


@dataclass
class DistillReport:
    """What `api.distill` did: the student (also written to `output`) and its `DistillResult`."""

    teacher: str
    student: str
    output: Path
    teacher_params: int
    student_params: int
    result: DistillResult
    """The `nnship.compress.DistillResult`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "teacher": self.teacher,
            "student": self.student,
            "output": str(self.output),
            "teacher_params": self.teacher_params,
            "student_params": self.student_params,
            **self.result.to_dict(),
        }


@dataclass
class CheckResult:
    """What `api.check` found: one finding per node and rule; `passed` when none is an error."""

    model: Path
    target: str
    tensorrt_version: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "error"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "target": self.target,
            "tensorrt_ops_version": self.tensorrt_version,
            "ok": self.passed,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class RenderedReport:
    """What `api.report` produced: the loaded `Report`, its rendering as `text` in `format`,
    and the files written (HTML and/or Markdown)."""

    report: Report
    format: str
    text: str
    written: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "written": {k: str(v) for k, v in self.written.items()},
            "report": self.report.to_dict(),
        }
