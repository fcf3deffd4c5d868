"""What `nnship.pipeline.build` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.core import Artifact


@dataclass
class BuildResult:
    """What `build` produced. `exit_code` is 0 when every gate passed, 1 when one failed."""

    report: Any
    """The `nnship.validate.Report` (also saved as `report_path` and beside it as Markdown)."""
    artifacts: list[Artifact]
    exit_code: int
    output_dir: Path
    report_path: Path | None = None
    stages: dict[str, str] = field(default_factory=dict)
    """Stage name -> "ran", "reused" or "skipped", in pipeline order."""
    cache_dir: Path | None = None
    """The stage cache folder this build read and wrote."""
    bundle_path: Path | None = None
    bundle_check: Any = None
    """The `nnship.runtime` smoke test of the bundle (`SmokeTestResult`) where one ran (`demo`)."""
    """The bundle folder `[bundle]` wrote (None without `[bundle]` or when a gate failed)."""

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
            "report": self.report.to_dict() if hasattr(self.report, "to_dict") else None,
        }
