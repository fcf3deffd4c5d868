"""Cross-layer equalization: outputs unchanged through a real runtime, channel ranges
equalized, ReLU6 honestly skipped."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from calib_models import conv_chain, max_rel, run
from onnx import numpy_helper

from nnship.calibration import cross_layer_equalize

X = np.random.default_rng(0).normal(size=(4, 4, 8, 8)).astype(np.float32)


def _weights(model: onnx.ModelProto, node_name: str) -> np.ndarray:
    node = next(n for n in model.graph.node if n.name == node_name)
    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    return numpy_helper.to_array(init)


@pytest.mark.parametrize("activation", ["Relu", "none"])
@pytest.mark.parametrize("depthwise", [False, True])
def test_equalization_keeps_outputs_and_evens_channel_ranges(activation, depthwise):
    model = conv_chain(activation=activation, depthwise=depthwise)
    out, report = cross_layer_equalize(model)
    onnx.checker.check_model(out, full_check=True)
    assert max_rel(run(model, {"x": X})[0], run(out, {"x": X})[0]) < 1e-4
    first = next(p for p in report.pairs if p.first == "conv1")
    assert first.second == "conv2" and first.channels == 8
    assert first.spread_before > 10 and first.spread_after < first.spread_before / 5
    ranges = np.abs(_weights(out, "conv1")).reshape(8, -1).max(axis=1)
    assert ranges.max() / ranges.min() == pytest.approx(first.spread_after)


def test_relu6_pairs_are_skipped_with_the_reason_and_left_untouched():
    model = conv_chain(activation="Relu6")
    out, report = cross_layer_equalize(model)
    assert all(p.first != "conv1" for p in report.pairs)
    reason = dict(report.skipped)["conv1"]
    assert "Clip(0, 6)" in reason and "not positive scale-equivariant" in reason
    np.testing.assert_array_equal(_weights(out, "conv1"), _weights(model, "conv1"))
    # conv2 -> Relu -> conv3 is still equalized; the function stays the same.
    assert [(p.first, p.second) for p in report.pairs] == [("conv2", "conv3")]
    assert max_rel(run(model, {"x": X})[0], run(out, {"x": X})[0]) < 1e-4


def test_input_model_is_not_modified():
    model = conv_chain()
    before = model.SerializeToString()
    cross_layer_equalize(model)
    assert model.SerializeToString() == before


def test_report_is_json_ready():
    _, report = cross_layer_equalize(conv_chain())
    data = report.to_dict()
    assert data["applied"] and data["pairs"][0]["first"] == "conv1"


@pytest.mark.slow
def test_exported_resnet_stays_equivalent(tmp_path):
    import torch

    from nnship.models import resnet_small

    torch.manual_seed(0)
    net = resnet_small(width=8).eval()
    path = tmp_path / "resnet.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), str(path), input_names=["x"],
                      output_names=["output"], dynamic_axes={"x": {0: "N"}}, dynamo=False)  # fmt: skip
    model = onnx.load(str(path))
    out, report = cross_layer_equalize(model)
    assert len(report.pairs) == 3  # conv1 -> Relu -> conv2 in each BasicBlock
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    assert max_rel(run(model, {"x": x})[0], run(out, {"x": x})[0]) < 1e-4


def test_relu6_replaced_by_relu_on_request_equalizes_the_pair():
    model = conv_chain(activation="Relu6")
    out, report = cross_layer_equalize(model, bounded_relu="relu")
    onnx.checker.check_model(out, full_check=True)
    pair = next(p for p in report.pairs if p.first == "conv1")
    assert pair.activation == "Clip(0, 6) -> Relu" and pair.spread_after < pair.spread_before / 5
    assert len(report.replaced) == 1 and report.to_dict()["replaced_bounded_relu"]
    assert "Clip" not in [n.op_type for n in out.graph.node]
    # the function is now exactly that of the same weights with a Relu (same seed)
    relu_model = conv_chain(activation="Relu")
    assert max_rel(run(relu_model, {"x": X})[0], run(out, {"x": X})[0]) < 1e-4


def test_bounded_relu_mode_is_validated():
    with pytest.raises(ValueError, match="bounded_relu"):
        cross_layer_equalize(conv_chain(), bounded_relu="clip")
