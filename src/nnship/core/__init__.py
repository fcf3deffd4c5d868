"""The few core types every stage shares, and the helpers every layer may use.

`TensorSpec`, `Batch`, `DataSource`, `Runner`, `Backend`, `Artifact` (this package's face), and
the modules `errors` (what a user can get wrong), `fileio` (atomic writes, one stable hash),
`progress` (the one progress helper), `environment` (the one machine identity). The core
imports nothing else of nnship: every other layer stands on it.

The torch float baseline and every backend are `Runner`s, so validation, calibration and
benchmarking never special-case a backend.
"""

from __future__ import annotations

from nnship.core.backend import (
    PRECISIONS,
    Artifact,
    Backend,
    CompileInputs,
    resolve_backend_options,
)
from nnship.core.data import DataSource, LabeledBatch, SampleWindow, first_samples
from nnship.core.runner import OpenedRunner, Runner
from nnship.core.tensors import (
    Batch,
    Dim,
    TensorSpec,
    check_batch,
    check_finite,
    check_input_names,
    example_batch,
    normalize_dtype,
    runtime_spec,
)

__all__ = [
    "PRECISIONS",
    "Artifact",
    "Backend",
    "Batch",
    "CompileInputs",
    "DataSource",
    "Dim",
    "LabeledBatch",
    "OpenedRunner",
    "Runner",
    "SampleWindow",
    "TensorSpec",
    "check_batch",
    "check_finite",
    "check_input_names",
    "example_batch",
    "first_samples",
    "normalize_dtype",
    "runtime_spec",
    "resolve_backend_options",
]
