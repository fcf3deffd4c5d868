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

from nnship.core.environment import Environment, capture_environment
from nnship.metrics.latency import latency_batch, measure_latency, timed_load, track_memory
from nnship.validate.bench import BenchResult, bench
from nnship.validate.commands import compare_report_files, open_runner, validate_models
from nnship.validate.compare import CompareThresholds, Comparison, Threshold, compare_reports
from nnship.validate.config import Gates, LatencyConfig, ValidateConfig
from nnship.validate.gates import check_gates
from nnship.validate.outputs import OutputRecorder, SavedOutputs, SavedOutputsRunner, save_outputs
from nnship.validate.render.terminal import print_latency, print_report
from nnship.validate.report import (
    SCHEMA_VERSION,
    GateVerdict,
    LatencyStats,
    LayerDrift,
    MemoryStats,
    Report,
    Row,
)
from nnship.validate.validate import RowAnnotation, validate

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
