"""`collect_statistics`: one streaming pass of ONNX Runtime over calibration data, recording per
float activation tensor its min/max, NaN/Inf count and an adaptive-range histogram.

Why hand-written: ONNX Runtime's calibrators keep the activations of every batch (or all
tensors' outputs at once) and exhaust memory on real models. Here each batch's activations are
folded into fixed-size histograms and dropped; memory is bounded by the histograms
(`2 * num_bins` int64 per tensor) plus one batch's exposed tensors. When exposing every tensor
of one batch at once would exceed `max_exposed_mb`, the graph runs as consecutive segments
(`nnship.calibration.segments`): still one pass, every node computed once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from nnship.calibration.config import StatisticsConfig
from nnship.calibration.histogram import AdaptiveHistogram
from nnship.calibration.segments import SegmentRunner, build_segments
from nnship.calibration.table import CalibrationTable, TensorStatistics
from nnship.core import Batch, DataSource, TensorSpec, check_batch
from nnship.core.errors import CalibrationError, DataError
from nnship.core.fileio import sha256_file
from nnship.core.progress import track
from nnship.onnx.graph import (
    graph_inputs,
    is_quantized,
    load_onnx,
    onnx_input_specs,
    tensor_types,
)

log = logging.getLogger(__name__)

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE}
_CHUNK = 1 << 20  # values per histogram update: bounds the float64/int64 temporaries (~16 MB)


class _Collector:
    """Running statistics of one tensor; `finish` turns them into `TensorStatistics`."""

    def __init__(self, name: str, dtype: str, num_bins: int, channel_axis: int | None) -> None:
        self.name, self.dtype, self.channel_axis = name, dtype, channel_axis
        self.hist = AdaptiveHistogram(num_bins)
        self.count = 0
        self.nonfinite = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.channel: np.ndarray | None = None

    def update(self, array: np.ndarray) -> None:
        flat = np.asarray(array).reshape(-1)
        for start in range(0, flat.size, _CHUNK):
            chunk = flat[start : start + _CHUNK]
            finite = np.isfinite(chunk)
            if not finite.all():
                self.nonfinite += int(chunk.size - finite.sum())
                chunk = chunk[finite]
            if chunk.size == 0:
                continue
            self.count += int(chunk.size)
            self.lo = min(self.lo, float(chunk.min()))
            self.hi = max(self.hi, float(chunk.max()))
            self.hist.update(chunk)
        if self.channel_axis is not None and np.ndim(array) >= 1:
            moved = np.moveaxis(np.abs(np.asarray(array, dtype=np.float32)), self.channel_axis, -1)
            moved = np.where(np.isfinite(moved), moved, 0.0).reshape(-1, moved.shape[-1])
            per_channel = moved.max(axis=0).astype(np.float64)
            if self.channel is None or self.channel.shape != per_channel.shape:
                self.channel = per_channel
            else:
                np.maximum(self.channel, per_channel, out=self.channel)

    def finish(self) -> TensorStatistics:
        seen = self.count > 0
        return TensorStatistics(
            name=self.name,
            dtype=self.dtype,
            count=self.count,
            num_nonfinite=self.nonfinite,
            min=self.lo if seen else None,
            max=self.hi if seen else None,
            hist_counts=self._counts(),
            hist_range=float(self.hist.amax),
            channel_axis=self.channel_axis if self.channel is not None else None,
            channel_abs_max=self.channel,
        )

    def _counts(self) -> np.ndarray:
        counts = self.hist.counts.copy()
        counts[self.hist.num_bins] += self.hist.total - int(self.hist.counts.sum())
        return counts


def _channel_axes(model: onnx.ModelProto) -> dict[str, int]:
    """Channel axis of tensors feeding a MatMul/Gemm as the left operand (for smoothing)."""
    axes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input:
            axes[node.input[0]] = -1
        elif node.op_type == "Gemm" and node.input:
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            if not trans_a:
                axes[node.input[0]] = 1
    return axes


def float_activation_tensors(model: onnx.ModelProto) -> tuple[list[str], dict[str, str]]:
    """Default tensors to calibrate: float graph inputs and node outputs, in topological order,
    leaving out initializers and tensors computed from constants only; plus skipped -> reason."""
    types = tensor_types(model)
    constant = {i.name for i in model.graph.initializer}
    names: list[str] = [i.name for i in graph_inputs(model)]
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant" or (inputs and all(i in constant for i in inputs)):
            # Folded weights (e.g. Identity over a shared initializer): not activations.
            constant.update(o for o in node.output if o)
            continue
        names.extend(o for o in node.output if o)
    chosen, skipped = [], {}
    for name in dict.fromkeys(names):
        if name in constant:
            continue
        elem = types.get(name)
        if elem is None:
            skipped[name] = "element type unknown after shape inference"
        elif elem in _FLOAT_TYPES:
            chosen.append(name)
    return chosen, skipped


def _batch_size(specs: list[TensorSpec], requested: int) -> int:
    fixed = {
        s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int) and s.shape[0] > 0
    }
    if len(fixed) == 1:
        size = fixed.pop()
        if size != requested:
            log.info("model has a fixed batch dimension of %d: using batch size %d", size, size)
        return size
    return requested


def _batches(data: DataSource, batch_size: int, max_samples: int | None) -> Iterator[Batch]:
    seen = 0
    for item in data.iter_batches(batch_size):
        batch = item.inputs
        rows = int(next(iter(batch.values())).shape[0])
        if max_samples is not None and seen + rows > max_samples:
            keep = max_samples - seen
            batch = {k: v[:keep] for k, v in batch.items()}
            rows = keep
        if rows <= 0:
            return
        seen += rows
        yield batch
        if max_samples is not None and seen >= max_samples:
            return


def _estimate_bytes(model: onnx.ModelProto, names: list[str], example: Batch) -> dict[str, int]:
    """Bytes of each tensor for one batch, from shape inference with the example's shapes;
    tensors whose shape stays unknown count as the largest known one (conservative)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.initializer[:]  # shapes only: no need to copy weights around twice
    initial = {i.name: i for i in model.graph.initializer}
    for inp in fixed.graph.input:
        if inp.name in example:
            dims = inp.type.tensor_type.shape.dim
            for dim, size in zip(dims, example[inp.name].shape):
                dim.Clear()
                dim.dim_value = int(size)
    for init in initial.values():  # initializers as typed inputs keep inference informed
        fixed.graph.input.append(
            onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    sizes: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
        for info in list(inferred.graph.value_info) + list(inferred.graph.input):
            dims = info.type.tensor_type.shape.dim
            if dims and all(d.HasField("dim_value") for d in dims):
                elem = onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
                sizes[info.name] = int(np.prod([d.dim_value for d in dims])) * elem.itemsize
    except Exception as exc:  # estimate only
        log.debug("shape inference for memory estimate failed: %s", exc)
    for name, arr in example.items():
        sizes[name] = int(arr.nbytes)
    largest = max(sizes.values(), default=1 << 20)
    return {name: sizes.get(name, largest) for name in names}


def _model_identity(onnx_path: Path | str | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(onnx_path, onnx.ModelProto):
        digest = hashlib.sha256(onnx_path.SerializeToString()).hexdigest()
        return onnx_path, digest
    return load_onnx(onnx_path), sha256_file(onnx_path)


def collect_statistics(
    onnx_path: Path | str | onnx.ModelProto,
    data: DataSource,
    *,
    tensors: list[str] | None = None,
    num_bins: int = 2048,
    batch_size: int = 8,
    max_samples: int | None = None,
    min_samples: int = 32,
    max_exposed_mb: float | None = None,
) -> CalibrationTable:
    """Run the float model over `data` once and record statistics of its float tensors.

    `tensors` defaults to every float activation (graph inputs and node outputs, not
    initializers). `num_bins`: histogram bins per side (defaults to 2048). `batch_size`
    defaults to 8 (a fixed batch dimension in the model wins). `max_samples` caps the samples
    used (None: all). Fewer than `min_samples` (defaults to 32) samples logs a warning.
    `max_exposed_mb` (MiB) bounds the tensors exposed per inference run; the graph runs in
    segments to respect it (None, the default: the largest tensor, at least 16 MiB).

    Raises `CalibrationError` for an already quantized model, unknown `tensors`, or no data;
    `DataError` (naming the input and both shapes) when the data does not fit the model.
    """
    model, model_sha = _model_identity(onnx_path)
    where = "the model" if isinstance(onnx_path, onnx.ModelProto) else f"'{onnx_path}'"
    if is_quantized(model):
        raise CalibrationError(
            f"ONNX model {where} is already quantized (it holds QuantizeLinear/"
            "DequantizeLinear or integer ops); calibrate the float model instead"
        )
    default, skipped = float_activation_tensors(model)
    if tensors is None:
        names = default
    else:
        unknown = [t for t in tensors if t not in default]
        if unknown:
            raise CalibrationError(
                f"Tensor(s) {unknown} are not float activations of {where} "
                "(misspelt, an initializer, or not a float tensor)"
            )
        names, skipped = list(dict.fromkeys(tensors)), {}
    if not names:
        raise CalibrationError(f"ONNX model {where} has no float activation tensors to calibrate")
    specs = onnx_input_specs(model)
    batch_size = _batch_size(specs, batch_size)
    first = next(_batches(data, batch_size, max_samples), None)
    if first is None:
        raise CalibrationError(f"Calibration data {data.describe()} holds no samples")
    check_batch(specs, first, where=f"calibration data {data.describe()}")
    sizes = _estimate_bytes(model, names, first)
    if max_exposed_mb is None:
        budget = max(16 << 20, max(sizes.values()))
    else:
        budget = int(max_exposed_mb * (1 << 20))
    axes = _channel_axes(model)
    types = tensor_types(model)
    collectors = {
        n: _Collector(n, onnx.helper.tensor_dtype_to_np_dtype(types[n]).name, num_bins, axes.get(n))
        for n in names
    }
    with tempfile.TemporaryDirectory(prefix="nnship-calib-") as tmp:
        segments = build_segments(model, names, sizes, budget, types, Path(tmp))
        del model  # the sessions hold the weights from here on
        if len(segments) > 1:
            log.info(
                "running the graph in %d segments: %d tensors, ~%.0f MiB per batch exposed",
                len(segments),
                len(names),
                sum(sizes.values()) / (1 << 20),
            )
        runner = SegmentRunner(segments, names)
        try:
            num_samples = _stream(runner, specs, data, batch_size, max_samples, collectors)
        finally:
            runner.close()
    if num_samples < min_samples:
        log.warning(
            "only %d calibration sample(s) were used (fewer than %d): ranges may not "
            "represent real inputs; use a few hundred samples",
            num_samples,
            min_samples,
        )
    table = CalibrationTable(
        tensors={n: c.finish() for n, c in collectors.items()},
        model_sha256=model_sha,
        data_fingerprint=data.fingerprint(),
        num_samples=num_samples,
        num_bins=num_bins,
        skipped=skipped,
    )
    for name, stats in table.tensors.items():
        if stats.num_nonfinite:
            log.warning("tensor '%s' produced %d NaN/Inf value(s)", name, stats.num_nonfinite)
    return table


def collect_with_settings(
    onnx_path: Path | str | onnx.ModelProto, data: DataSource, settings: StatisticsConfig
) -> CalibrationTable:
    """`collect_statistics` over every float activation with the collection settings of
    `settings` (bins, batch size, sample bounds, exposed-tensor budget): what `nnship calibrate`
    and the build's calibration stage both collect."""
    return collect_statistics(
        onnx_path,
        data,
        num_bins=settings.num_bins,
        batch_size=settings.batch_size,
        max_samples=settings.max_samples,
        min_samples=settings.min_samples,
        max_exposed_mb=settings.max_exposed_mb,
    )


def _stream(
    runner: SegmentRunner,
    specs: list[TensorSpec],
    data: DataSource,
    batch_size: int,
    max_samples: int | None,
    collectors: dict[str, _Collector],
) -> int:
    """Feed every batch through the segments and fold each exposed tensor into its collector."""
    fixed = any(s.shape and isinstance(s.shape[0], int) and s.shape[0] > 0 for s in specs)
    total = data.num_samples if max_samples is None else min(data.num_samples, max_samples)
    seen = 0
    batches = _batches(data, batch_size, max_samples)
    for batch in track(batches, "calibrating", total=math.ceil(total / batch_size)):
        rows = int(next(iter(batch.values())).shape[0])
        if fixed and rows != batch_size:
            log.warning(
                "skipping a final partial batch of %d sample(s): the model's batch "
                "dimension is fixed at %d",
                rows,
                batch_size,
            )
            continue
        check_batch(specs, batch, where=f"calibration data {data.describe()}")
        try:
            for name, value in runner.run(batch):
                collectors[name].update(value)
        except Exception as exc:
            if "onnxruntime" not in type(exc).__module__:
                raise
            # ORT reports shape/type mismatches the declared specs could not catch.
            raise DataError(
                f"ONNX Runtime rejected calibration data {data.describe()}: {exc}"
            ) from exc
        seen += rows
    return seen
