"""Split an ONNX graph into consecutive segments so calibration exposes a bounded number of
intermediate tensors per inference run, without recomputing anything.

Why: exposing every activation of a CNN as a graph output makes ONNX Runtime hold all of them
at once (hundreds of MB per batch for a MobileNet at 160 px, 10x a plain run). Running the
graph segment by segment keeps alive only one segment's exposed tensors plus the tensors that
cross a cut, and every node still runs exactly once (weights are not duplicated: each
initializer goes to the segments that use it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from nnship.core import Batch
from nnship.onnx.graph import save_onnx

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """One runnable piece of the graph: what it reads, what it returns, where it is saved."""

    path: Path
    inputs: list[str]
    outputs: list[str]


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
    )


def plan_cuts(
    nodes: list[onnx.NodeProto], exposed: set[str], sizes: dict[str, int], budget: int
) -> list[list[int]]:
    """Greedy partition of node indices (topological order) so each segment's exposed output
    bytes stay under `budget` (a single node over budget gets a segment of its own)."""
    segments: list[list[int]] = [[]]
    used = 0
    for index, node in enumerate(nodes):
        cost = sum(sizes.get(o, 0) for o in node.output if o in exposed)
        if segments[-1] and used + cost > budget:
            segments.append([])
            used = 0
        segments[-1].append(index)
        used += cost
    return segments


def build_segments(
    model: onnx.ModelProto,
    exposed: list[str],
    sizes: dict[str, int],
    budget: int,
    types: dict[str, int],
    out_dir: Path,
) -> list[Segment]:
    """Save the segments of `model` under `out_dir`; each returns its exposed tensors and the
    tensors later segments read. `types` maps tensor names to ONNX element types. One segment (the whole graph) when the graph has control
    flow, when a crossing tensor's type is unknown, or when everything fits the budget."""
    graph = model.graph
    nodes = list(graph.node)
    exposed_set = set(exposed)
    graph_input_names = [i.name for i in graph.input]
    initializers = {i.name: i for i in graph.initializer}
    cuts = plan_cuts(nodes, exposed_set, sizes, budget)
    if len(cuts) > 1 and any(_has_subgraph(n) for n in nodes):
        log.info("graph has control flow: calibrating it in one piece")
        cuts = [list(range(len(nodes)))]
    producer = {o: s for s, idx in enumerate(cuts) for i in idx for o in nodes[i].output if o}
    readers: dict[str, set[int]] = {}
    for s, idx in enumerate(cuts):
        for i in idx:
            for name in nodes[i].input:
                if name and name not in initializers:
                    readers.setdefault(name, set()).add(s)
    crossing = {
        name
        for name, segs in readers.items()
        if name in producer and any(s != producer[name] for s in segs)
    }
    if len(cuts) > 1 and any(name not in types for name in crossing):
        log.info("a tensor crossing a segment cut has no known type: one segment")
        return build_segments(model, exposed, sizes, 1 << 62, types, out_dir)
    segments = []
    for s, idx in enumerate(cuts):
        seg_nodes = [nodes[i] for i in idx]
        produced = {o for n in seg_nodes for o in n.output if o}
        reads = [
            name
            for n in seg_nodes
            for name in n.input
            if name and name not in produced and name not in initializers
        ]
        reads = list(dict.fromkeys(reads))
        outputs = [
            o for n in seg_nodes for o in n.output if o and (o in exposed_set or o in crossing)
        ]
        outputs = list(dict.fromkeys(outputs))
        if not outputs:
            continue
        used_inits = {name for n in seg_nodes for name in n.input if name in initializers}
        value_info = {v.name: v for v in list(graph.input) + list(graph.value_info)}
        inputs = [
            value_info[name]
            if name in graph_input_names
            else helper.make_tensor_value_info(name, types[name], None)
            for name in reads
        ]
        outs = [
            helper.make_tensor_value_info(o, types[o], None)
            if o in types
            else helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None)
            for o in outputs
        ]
        sub = helper.make_graph(
            seg_nodes,
            f"{graph.name}_segment{s}",
            inputs,
            outs,
            [initializers[name] for name in sorted(used_inits)],
        )
        seg_model = helper.make_model(
            sub, opset_imports=list(model.opset_import), ir_version=model.ir_version
        )
        seg_model.functions.extend(model.functions)
        path = save_onnx(seg_model, out_dir / f"segment{s}.onnx")
        segments.append(Segment(path, reads, outputs))
    return segments


_ARENA_REGISTERED = False


def _register_shared_arena() -> None:
    global _ARENA_REGISTERED
    if _ARENA_REGISTERED:
        return
    import onnxruntime as ort

    info = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    # arena_extend_strategy 1 = kSameAsRequested: grow by what is asked, not powers of two.
    config = ort.OrtArenaCfg({"arena_extend_strategy": 1})
    try:
        ort.create_and_register_allocator(info, config)
    except Exception as exc:  # already registered by another component: reuse it
        log.debug("shared ORT allocator not registered: %s", exc)
    _ARENA_REGISTERED = True


class SegmentRunner:
    """Runs the segments in order on one batch, yielding `(name, array)` for exposed tensors
    as soon as each segment returns them; crossing tensors are dropped after their last use."""

    def __init__(self, segments: list[Segment], exposed: list[str]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # No fusion: every exposed tensor is computed exactly as the float graph defines it.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        # One arena shared by every segment's session (the process-wide env allocator): the
        # peak is one segment's working set, not the sum of per-session arenas, and freed
        # buffers are reused instead of fragmenting the C heap.
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
        self.sessions = [
            ort.InferenceSession(str(seg.path), options, providers=["CPUExecutionProvider"])
            for seg in segments
        ]
        self.segments = segments
        self.exposed = set(exposed)
        self.last_use: dict[str, int] = {}
        for s, seg in enumerate(segments):
            for name in seg.inputs:
                self.last_use[name] = s

    def run(self, batch: Batch) -> Iterator[tuple[str, np.ndarray]]:
        from onnxruntime import OrtValue

        # OrtValues end to end: `OrtValue.numpy()` is a view, so no output is copied.
        live = {
            name: OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for name, v in batch.items()
        }
        for name in batch:
            if name in self.exposed:
                yield name, batch[name]
        for s, (seg, session) in enumerate(zip(self.segments, self.sessions)):
            values = session.run_with_ort_values(
                seg.outputs, {name: live[name] for name in seg.inputs}
            )
            for name, value in zip(seg.outputs, values):
                if self.last_use.get(name, -1) > s:
                    live[name] = value
            for name in [n for n in live if self.last_use.get(n, -1) <= s and n not in batch]:
                del live[name]
            for name, value in zip(seg.outputs, values):
                if name in self.exposed:
                    yield name, value.numpy()
            del values

    def close(self) -> None:
        self.sessions = []
