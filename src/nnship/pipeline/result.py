"""What `nnship.pipeline.build` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import Artifact

if TYPE_CHECKING:
    from nnship.runtime.bundle import SmokeTestResult
    from nnship.validate.report import Report


@dataclass
class BuildResult:
    """What `build` produced. `exit_code` is 0 when every gate passed, 1 when one failed."""

    report: Report
    """The report (also saved as `report_path` and beside it as Markdown)."""
    artifacts: list[Artifact]
    exit_code: int
    output_dir: Path
    report_path: Path | None = None
    stages: dict[str, str] = field(default_factory=dict)
    """Stage name -> "ran", "reused" or "skipped", in pipeline order."""
    cache_dir: Path | None = None
    """The stage cache folder this build read and wrote."""
    bundle_path: Path | None = None
    """The bundle folder `[bundle]` wrote (None without `[bundle]` or when a gate failed)."""
    bundle_check: SmokeTestResult | None = None
    """The `nnship.runtime` smoke test of the bundle where one ran (`demo`)."""

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: exit code, folders, stages, artifacts and the report."""
        return {
            "exit_code": self.exit_code,
            "passed": self.passed,
            "output_dir": str(self.output_dir),
            "report_path": str(self.report_path) if self.report_path else None,
            "cache_dir": str(self.cache_dir) if self.cache_dir else None,
            "bundle_path": str(self.bundle_path) if self.bundle_path else None,
            "bundle_check": self.bundle_check.to_dict() if self.bundle_check else None,
            "stages": dict(self.stages),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "report": self.report.to_dict(),
        }
