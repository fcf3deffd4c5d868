"""Helpers that several stages share (one source of truth): ONNX precision detection, backend
option overrides, input-name checks. Each is pinned to the exact result its callers relied on."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnship.backends.config import OpenVinoOptions, TensorRtOptions
from nnship.backends.openvino.runner import resolve_options as resolve_openvino
from nnship.backends.tensorrt import resolve_options as resolve_tensorrt
from nnship.core import TensorSpec, check_batch, check_input_names, resolve_backend_options
from nnship.core.errors import BackendError, DataError
from nnship.onnx.graph import onnx_precision
from nnship.sources.conform import check_names


def _graph(weight_dtype: np.dtype, op: str = "Add") -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(weight_dtype))
    w = numpy_helper.from_array(np.ones(2, weight_dtype), "w")
    if op == "Add":
        nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    else:
        scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
        w = scale
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s"], ["y"]),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, [2])],
        [helper.make_tensor_value_info("y", elem, [2])],
        [w],
    )
    return helper.make_model(graph)


def test_onnx_precision_detects_int8_fp16_and_fp32() -> None:
    assert onnx_precision(_graph(np.float32)) == "fp32"
    assert onnx_precision(_graph(np.float16)) == "fp16"
    assert onnx_precision(_graph(np.float32, op="QDQ")) == "int8"
    assert TensorProto.FLOAT16 == 10  # the value the backends compared against before


def test_backend_option_overrides_skip_none_and_name_the_bad_field() -> None:
    base = OpenVinoOptions(device="CPU", threads=2)
    opts = resolve_backend_options(
        OpenVinoOptions, "openvino", base, threads=None, hint="throughput"
    )
    assert opts.threads == 2 and opts.hint == "throughput"
    assert resolve_openvino(base, threads=4).threads == 4
    with pytest.raises(BackendError, match=r"^\[backends\.openvino\] hint: "):
        resolve_openvino(hint="fastest")
    with pytest.raises(BackendError, match=r"^\[backends\.tensorrt\] workspace_mb: "):
        resolve_tensorrt(workspace_mb=-1)
    assert isinstance(resolve_tensorrt(), TensorRtOptions)


def test_input_name_checks_share_one_message() -> None:
    specs = [TensorSpec("a", ("batch", 2)), TensorSpec("b", ("batch", 2))]
    expected = (
        "Inputs in 'd.npz' do not match the model: model expects ['a', 'b'], data has "
        "['a', 'c']; missing ['b']; unexpected ['c']"
    )
    for check in (check_names, check_input_names):
        with pytest.raises(DataError) as info:
            check(specs, ["a", "c"], where="'d.npz'")
        assert str(info.value) == expected
    zeros = np.zeros((1, 2), np.float32)
    with pytest.raises(DataError) as info:
        check_batch(specs, {"a": zeros, "c": zeros}, where="'d.npz'")
    assert str(info.value) == expected
    with pytest.raises(DataError, match=r"^Inputs do not match the model"):
        check_input_names(specs, ["a"])
    check_input_names(specs, ["b", "a"])  # any order
