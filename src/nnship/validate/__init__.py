"""Validation: the float baseline against each artifact -> `Report` -> gates -> exit code.

Public surface:
- `validate(baseline, candidates, data, *, config, ..., annotations, notes, extra) -> Report`,
  `RowAnnotation` (what a caller adds to a candidate's row)
- `ValidateConfig`, `Gates`, `LatencyConfig` (the recipe's `[validate]` section)
- `Report` (`save`, `load`, `to_json`; Markdown via `render.markdown.report_markdown`), `print_report`, `print_latency`
- `measure_latency`, `latency_batch`, `timed_load`, `track_memory`
- `compare_reports`, `CompareThresholds`, `Threshold`, `Comparison`
- `save_outputs`, `OutputRecorder`, `SavedOutputs`, `SavedOutputsRunner`
- `capture_environment`, `Environment`
- behind the CLI (paths in, results out): `validate_models`, `bench` / `BenchResult`,
  `compare_report_files`, `open_runner`
"""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "BenchResult": "nnship.validate.bench",
        "CompareThresholds": "nnship.validate.compare",
        "Comparison": "nnship.validate.compare",
        "Environment": "nnship.core.environment",
        "GateVerdict": "nnship.validate.report",
        "Gates": "nnship.validate.config",
        "LatencyConfig": "nnship.validate.config",
        "LatencyStats": "nnship.validate.report",
        "LayerDrift": "nnship.validate.report",
        "MemoryStats": "nnship.validate.report",
        "OutputRecorder": "nnship.validate.outputs",
        "Report": "nnship.validate.report",
        "Row": "nnship.validate.report",
        "RowAnnotation": "nnship.validate.validate",
        "SCHEMA_VERSION": "nnship.validate.report",
        "SavedOutputs": "nnship.validate.outputs",
        "SavedOutputsRunner": "nnship.validate.outputs",
        "Threshold": "nnship.validate.compare",
        "ValidateConfig": "nnship.validate.config",
        "bench": "nnship.validate.bench",
        "capture_environment": "nnship.core.environment",
        "check_gates": "nnship.validate.gates",
        "compare_report_files": "nnship.validate.commands",
        "compare_reports": "nnship.validate.compare",
        "latency_batch": "nnship.metrics.latency",
        "measure_latency": "nnship.metrics.latency",
        "open_runner": "nnship.validate.commands",
        "print_latency": "nnship.validate.render.terminal",
        "print_report": "nnship.validate.render.terminal",
        "save_outputs": "nnship.validate.outputs",
        "timed_load": "nnship.metrics.latency",
        "track_memory": "nnship.metrics.latency",
        "validate": "nnship.validate.validate",
        "validate_models": "nnship.validate.commands",
    },
)

__all__ = [
    "BenchResult",
    "bench",
    "compare_report_files",
    "open_runner",
    "validate_models",
    "SCHEMA_VERSION",
    "CompareThresholds",
    "Comparison",
    "Environment",
    "GateVerdict",
    "Gates",
    "LatencyConfig",
    "LatencyStats",
    "LayerDrift",
    "MemoryStats",
    "OutputRecorder",
    "Report",
    "Row",
    "RowAnnotation",
    "SavedOutputs",
    "SavedOutputsRunner",
    "Threshold",
    "ValidateConfig",
    "capture_environment",
    "check_gates",
    "compare_reports",
    "latency_batch",
    "measure_latency",
    "print_latency",
    "print_report",
    "save_outputs",
    "timed_load",
    "track_memory",
    "validate",
]
