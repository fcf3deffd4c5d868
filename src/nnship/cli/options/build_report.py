"""The build-report group of `build` and `demo`: `--json` for the report, and `finish`, which
prints the report and where the build put things and returns the build's exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nnship.cli.options.output import JsonArgs

__all__ = ["BuildReportArgs"]


class BuildReportArgs:
    """`--json OUT.json` (the report) and the end of a build on the terminal."""

    json = JsonArgs("also write the report JSON here")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        self.json.add_to(parser)

    def finish(self, result: Any, args: argparse.Namespace) -> Any:
        """Print the report and where things are (unless -q), write `--json`, name the first
        failed gate on stderr; returns the result's exit code (1 when a gate failed)."""
        from nnship.validate.render.terminal import print_report

        print_report(result.report)
        self.json.write(args, result.report.to_dict())
        if not getattr(args, "quiet", False):
            print(f"report: {result.report_path} (+ report.md)")
            for artifact in result.artifacts:
                print(f"artifact {artifact.label}: {artifact.path}")
            if getattr(result, "bundle_path", None):
                print(f"bundle: {result.bundle_path} (check it with: nnship bundle verify)")
        failed = result.report.failed_gates
        if failed:
            first = failed[0]
            print(
                f"nnship: {len(failed)} gate check(s) failed, first: {first.gate} on {first.row} "
                f"(value {first.value}, threshold {first.threshold})",
                file=sys.stderr,
            )
        return result.exit_code
