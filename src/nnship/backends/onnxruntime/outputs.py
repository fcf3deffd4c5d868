"""Run an ONNX model over a data source on the CPU and collect every output: what the quantizer,
the calibrator and the subnormal check compare candidates with. Batches are checked against
the model's inputs once, then run unchecked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from nnship.backends.onnxruntime.runner import OnnxRuntimeRunner
from nnship.core import Batch, DataSource, check_batch
from nnship.core.errors import BackendError, QuantizationError
from nnship.onnx.graph import onnx_input_specs


def cpu_runner(model: onnx.ModelProto | Path | str, *, threads: int = 2) -> OnnxRuntimeRunner:
    """An `OnnxRuntimeRunner` on CPU with every graph optimization on (QDQ fusions need them),
    one inter-op thread; a model ONNX Runtime cannot load is a `QuantizationError`."""
    try:
        return OnnxRuntimeRunner(
            model, threads=threads, inter_op_threads=1, graph_optimization="all"
        )
    except BackendError as exc:
        raise QuantizationError(f"ONNX Runtime cannot load the model: {exc}") from exc


def make_session(model: onnx.ModelProto | Path | str, *, threads: int = 2):  # noqa: ANN201
    """The ONNX Runtime session of `cpu_runner(model)` (for callers that run named outputs)."""
    return cpu_runner(model, threads=threads).session


@dataclass
class Outputs:
    """Every output of a model over a data source (first axis = sample), and the labels."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None

    @property
    def primary(self) -> np.ndarray:
        return next(iter(self.arrays.values()))


def iter_checked(
    model: onnx.ModelProto, data: DataSource, *, max_samples: int | None, batch_size: int = 32
):  # noqa: ANN201
    """Yield (inputs, labels) of at most `max_samples` samples, each batch checked against the
    model's inputs (`DataError` names the tensor and both shapes). A fixed batch dimension in
    the model (foreign ONNX often pins 1) overrides `batch_size`."""
    specs = onnx_input_specs(model)
    fixed = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)} - {0, -1}
    if len(fixed) == 1:
        batch_size = fixed.pop()
    seen = 0
    for item in data.iter_batches(batch_size):
        inputs: Batch = item.inputs
        if max_samples is not None and seen >= max_samples:
            break
        if max_samples is not None and seen + len(next(iter(inputs.values()))) > max_samples:
            keep = max_samples - seen
            inputs = {k: v[:keep] for k, v in inputs.items()}
            labels = None if item.labels is None else item.labels[:keep]
        else:
            labels = item.labels
        check_batch(specs, inputs, where=data.describe())
        seen += len(next(iter(inputs.values())))
        yield inputs, labels


def run_model(
    model: onnx.ModelProto, data: DataSource, *, max_samples: int | None = None
) -> Outputs:
    """Outputs of `model` on `data` (at most `max_samples` samples), concatenated."""
    runner = cpu_runner(model)
    try:
        names = runner.output_names
        chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
        labels: list[np.ndarray] = []
        for inputs, batch_labels in iter_checked(model, data, max_samples=max_samples):
            out = runner.run(inputs, check=False)  # iter_checked checked the batch
            for name in names:
                chunks[name].append(np.asarray(out[name]))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
    finally:
        runner.close()
    arrays = {n: np.concatenate(v) for n, v in chunks.items()}
    return Outputs(arrays, np.concatenate(labels) if labels else None)
