"""A fake `tensorrt` module (TensorRT cannot be installed on CI machines, and there is no GPU).

It implements the slice of the TensorRT 10/11 Python API nnship uses, records every call in
`calls`, and mimics TensorRT 11: there is no `BuilderFlag` at all, so code that still sets
INT8/FP16 builder flags fails here. The "engine" it serializes is JSON naming the network's
inputs and outputs; its execution context reads inputs from, and writes outputs to, the
addresses it is given (host memory in tests) with `ctypes`: output[b, j] = (j + 1) * sum(x[b]).
"""

from __future__ import annotations

import enum
import json
import types
from pathlib import Path

import numpy as np
import onnx

__version__ = "11.0.0-fake"
NUM_CLASSES = 4


class Logger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, severity: int = 2) -> None:
        self.severity = severity


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 0


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    INT64 = 8


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
       DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.INT64: np.int64}  # fmt: skip


def nptype(dtype: DataType) -> type:
    return _NP[dtype]


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.reject_ops: set[str] = set()
        self.fail_build = False

    def add(self, *call: object) -> None:
        self.calls.append(call)

    def named(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]


calls = _Recorder()


class Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[dict] = []
        self.outputs: list[str] = []


class ParserError:
    def __init__(self, node_name: str, op: str, desc: str) -> None:
        self._node_name, self._op, self._desc = node_name, op, desc

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._op

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return 0


class OnnxParser:
    def __init__(self, network: Network, logger: Logger) -> None:
        self.network = network
        self.errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> ParserError:
        return self.errors[index]

    def parse_from_file(self, path: str) -> bool:
        calls.add("parse_from_file", path)
        model = onnx.load(path)
        for node in model.graph.node:
            if node.op_type in calls.reject_ops:
                self.errors.append(
                    ParserError(
                        node.name, node.op_type, f"No importer registered for op: {node.op_type}"
                    )
                )
        init = {i.name for i in model.graph.initializer}
        for value in model.graph.input:
            if value.name in init:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else -1
                    for d in value.type.tensor_type.shape.dim]  # fmt: skip
            elem = value.type.tensor_type.elem_type
            dtype = DataType.INT64 if elem == onnx.TensorProto.INT64 else DataType.FLOAT
            self.network.inputs.append({"name": value.name, "shape": dims, "dtype": int(dtype)})
        self.network.outputs = [o.name for o in model.graph.output]
        return not self.errors


class OptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        calls.add("set_shape", name, tuple(lo), tuple(opt), tuple(hi))
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def serialize(self) -> bytes:
        return self.data + b"+timing"


class BuilderConfig:
    def __init__(self) -> None:
        self.profiles: list[OptimizationProfile] = []
        self.cache: TimingCache | None = None
        self.builder_optimization_level = 3

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        calls.add("set_memory_pool_limit", pool, size)

    def add_optimization_profile(self, profile: OptimizationProfile) -> int:
        calls.add("add_optimization_profile", dict(profile.shapes))
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> TimingCache:
        calls.add("create_timing_cache", bytes(data))
        return TimingCache(data)

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        calls.add("set_timing_cache", cache.data, ignore_mismatch)
        self.cache = cache
        return True

    def get_timing_cache(self) -> TimingCache | None:
        return self.cache


class Builder:
    def __init__(self, logger: Logger) -> None:
        calls.add("Builder")

    def create_network(self, flags: int = 0) -> Network:
        calls.add("create_network", flags)
        return Network(flags)

    def create_builder_config(self) -> BuilderConfig:
        return BuilderConfig()

    def create_optimization_profile(self) -> OptimizationProfile:
        return OptimizationProfile()

    def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes | None:
        calls.add("build_serialized_network", network.flags, len(config.profiles))
        if calls.fail_build:
            return None
        plan = {"inputs": network.inputs, "outputs": network.outputs, "fake": "engine"}
        return json.dumps(plan).encode()


class Runtime:
    def __init__(self, logger: Logger) -> None:
        calls.add("Runtime")

    def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
        calls.add("deserialize_cuda_engine", len(data))
        try:
            plan = json.loads(bytes(data))
        except ValueError:
            return None
        return Engine(plan)


class Engine:
    def __init__(self, plan: dict) -> None:
        self.inputs = plan["inputs"]
        self.outputs = plan["outputs"]

    @property
    def num_io_tensors(self) -> int:
        return len(self.inputs) + len(self.outputs)

    def get_tensor_name(self, index: int) -> str:
        names = [i["name"] for i in self.inputs] + self.outputs
        return names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        is_input = any(i["name"] == name for i in self.inputs)
        return TensorIOMode.INPUT if is_input else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        for i in self.inputs:
            if i["name"] == name:
                return DataType(i["dtype"])
        return DataType.FLOAT

    def get_tensor_shape(self, name: str) -> tuple:
        for i in self.inputs:
            if i["name"] == name:
                return tuple(i["shape"])
        return (-1, NUM_CLASSES)

    def create_execution_context(self) -> Context:
        return Context(self)


class Context:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        calls.add("set_input_shape", name, tuple(shape))
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        calls.add("set_tensor_address", name)
        self.addresses[name] = int(address)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        batch = next(iter(self.shapes.values()))[0]
        return (batch, NUM_CLASSES)

    def _array(self, name: str, shape: tuple, dtype: type) -> np.ndarray:
        count = int(np.prod(shape))
        ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
        buffer = (ctype * count).from_address(self.addresses[name])
        return np.ctypeslib.as_array(buffer).reshape(shape)

    def execute_async_v3(self, stream_handle: int) -> bool:
        calls.add("execute_async_v3", stream_handle)
        total = None
        for spec in self.engine.inputs:
            x = self._array(
                spec["name"], self.shapes[spec["name"]], nptype(DataType(spec["dtype"]))
            )
            s = x.reshape(x.shape[0], -1).astype(np.float64).sum(axis=1)
            total = s if total is None else total + s
        for name in self.engine.outputs:
            out = self._array(name, self.get_tensor_shape(name), np.float32)
            out[...] = (total[:, None] * np.arange(1, NUM_CLASSES + 1)).astype(np.float32)
        return True


def expected_output(batch: dict[str, np.ndarray]) -> np.ndarray:
    """What the fake engine computes for `batch` (for assertions)."""
    total = sum(v.reshape(v.shape[0], -1).astype(np.float64).sum(axis=1) for v in batch.values())
    return (total[:, None] * np.arange(1, NUM_CLASSES + 1)).astype(np.float32)


def module() -> types.ModuleType:
    """This module, freshly reset, to put into `sys.modules["tensorrt"]`."""
    import sys

    me = sys.modules[__name__]
    me.calls = _Recorder()
    return me


class HostStream:
    """Stands in for the runner's CUDA stream when tensors live in host memory."""

    handle = 1234

    def __init__(self, device: object = None) -> None:
        self.synchronized = 0

    def wait_for_current(self) -> None:
        return None

    def synchronize(self) -> None:
        self.synchronized += 1


def kit_script(kit_dir: Path) -> Path:
    return kit_dir / "build_engine.py"
