"""Per-channel means of intermediate tensors over a data source, computed inside ONNX Runtime.

Used by bias correction (`nnship.calibration.bias_correction`). Each wanted tensor gets a
`ReduceSum` over every axis but the channel axis (1) and a `Shape`, and these become the
graph's only outputs. Only per-channel sums leave the session, and ONNX Runtime frees each
activation once its consumers have run, so memory stays that of plain inference. The graph
is cut down to the nodes those outputs need. Every other node keeps its usual ONNX Runtime
optimizations, so QDQ groups upstream still run as fused integer kernels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnship.core import Batch, DataSource, check_batch
from nnship.core.errors import CalibrationError
from nnship.onnx.graph import onnx_input_specs

THREADS = 2
"""ONNX Runtime intra-op threads: fixed, so that sums do not depend on the machine's cores."""
_PREFIX = "__nnship_channel_means"


class BatchStream:
    """Re-iterable batches of at most `max_samples` samples (None = all) from `data`, each
    checked against `model`'s inputs. A fixed batch dimension in the model overrides
    `batch_size`. After a full iteration `samples` holds the number of samples seen."""

    def __init__(
        self, model: onnx.ModelProto, data: DataSource, max_samples: int | None, batch_size: int
    ) -> None:
        self.specs = onnx_input_specs(model)
        fixed = {s.shape[0] for s in self.specs if s.shape and isinstance(s.shape[0], int)}
        fixed.discard(0)
        fixed.discard(-1)
        self.batch_size = fixed.pop() if len(fixed) == 1 else batch_size
        self.data, self.max_samples = data, max_samples
        self.samples = 0

    def __iter__(self) -> Iterator[Batch]:
        seen = 0
        for item in self.data.iter_batches(self.batch_size):
            batch = item.inputs
            rows = int(next(iter(batch.values())).shape[0])
            if self.max_samples is not None and seen + rows > self.max_samples:
                rows = self.max_samples - seen
                batch = {k: v[:rows] for k, v in batch.items()}
            if rows <= 0:
                break
            check_batch(self.specs, batch, where=self.data.describe())
            seen += rows
            yield batch
        if seen == 0:
            raise CalibrationError(f"{self.data.describe()} yielded no samples")
        self.samples = seen


def channel_means(
    model: onnx.ModelProto, tensors: dict[str, int], batches: BatchStream
) -> dict[str, np.ndarray]:
    """Mean over every axis but 1 of each tensor in `tensors` (name -> rank) on all batches.
    The reduction runs inside ONNX Runtime (ReduceSum + Shape), so only per-channel sums leave
    the session; only the nodes those need run."""
    import onnxruntime as ort

    probe, outputs = _probe_model(model, tensors)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    wanted = {i.name for i in session.get_inputs()}
    sums = {t: np.zeros(0) for t in tensors}
    counts = dict.fromkeys(tensors, 0)
    names = [n for pair in outputs.values() for n in pair]
    for batch in batches:
        values = dict(
            zip(names, session.run(names, {k: v for k, v in batch.items() if k in wanted}))
        )
        for tensor, (sum_name, shape_name) in outputs.items():
            total = np.asarray(values[sum_name], dtype=np.float64)
            shape = np.asarray(values[shape_name])
            sums[tensor] = total if sums[tensor].size == 0 else sums[tensor] + total
            counts[tensor] += int(np.prod(shape)) // max(int(shape[1]), 1)
    return {t: sums[t] / max(counts[t], 1) for t in tensors}


def _probe_model(
    model: onnx.ModelProto, tensors: dict[str, int]
) -> tuple[onnx.ModelProto, dict[str, tuple[str, str]]]:
    """`model` cut down to the nodes needed for per-channel sums (ReduceSum over every axis
    but 1) and shapes of `tensors`, which become its only outputs."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    del graph.output[:]
    outputs: dict[str, tuple[str, str]] = {}
    for i, (tensor, rank) in enumerate(sorted(tensors.items())):
        axes = [a for a in range(rank) if a != 1]
        sum_name, shape_name = f"{_PREFIX}_sum_{i}", f"{_PREFIX}_shape_{i}"
        if opset >= 13:
            axes_name = f"{_PREFIX}_axes_{i}"
            graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), axes_name))
            graph.node.append(
                helper.make_node("ReduceSum", [tensor, axes_name], [sum_name], keepdims=0)
            )
        else:
            graph.node.append(
                helper.make_node("ReduceSum", [tensor], [sum_name], axes=axes, keepdims=0)
            )
        graph.node.append(helper.make_node("Shape", [tensor], [shape_name]))
        graph.output.extend(
            [
                helper.make_tensor_value_info(sum_name, TensorProto.FLOAT, None),
                helper.make_tensor_value_info(shape_name, TensorProto.INT64, None),
            ]
        )
        outputs[tensor] = (sum_name, shape_name)
    _keep_needed(graph)
    return probe, outputs


def _keep_needed(graph: onnx.GraphProto) -> None:
    """Drop nodes, initializers and inputs the graph outputs do not depend on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
            for attr in node.attribute:  # subgraphs read outer-scope names
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    needed.update(i for n in sub.node for i in n.input if i)
    kept = [onnx.NodeProto() for _ in keep]
    for copy, node in zip(kept, reversed(keep)):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    inputs = [i for i in graph.input if i.name in needed]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
