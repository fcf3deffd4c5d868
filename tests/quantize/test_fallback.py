import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from nnship.errors import QuantizationError
from nnship.quantize import get_profile, make_config, quantize
from nnship.quantize.fallback import rank_sensitivity
from nnship.quantize.placement import plan_placement
from nnship.quantize.qdq import write_qdq
from nnship.sources import ArrayData


def _two_layer(tmp_path):
    """x -> fc1 -> h -> fc2 -> y, where fc1's first output channel is 200x the others, so
    h's int8 step erases the small channels fc2 reads: fc2 is the sensitive node."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((16, 16)).astype(np.float32)
    w1[0] *= 200.0
    w2 = rng.standard_normal((8, 16)).astype(np.float32)
    w2[:, 0] = 0.0  # fc2 ignores the huge channel: its output depends on the small ones
    nodes = [
        helper.make_node("Gemm", ["x", "W1"], ["h"], name="fc1", transB=1),
        helper.make_node("Gemm", ["h", "W2"], ["y"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    data = {"x": rng.standard_normal((64, 16)).astype(np.float32)}
    return path, data


def test_sensitivity_ranks_the_layer_behind_the_outlier_first(tmp_path):
    path, data = _two_layer(tmp_path)
    model = onnx.load(str(path))
    h = model.graph.node[0]
    ranges = {"x": (-4.0, 4.0), "h": (-3000.0, 3000.0), "y": (-50.0, 50.0)}
    plan = plan_placement(model, get_profile("openvino"), ranges)
    assert plan.nodes == ["fc1", "fc2"], h
    qmodel, _ = write_qdq(model, ranges, plan, get_profile("openvino"))
    ranking = rank_sensitivity(model, qmodel, plan, ArrayData(data), max_samples=32)
    assert ranking[0][0] == "fc2"
    assert ranking[0][1] > 10 * ranking[1][1]


def test_fallback_reverts_until_the_budget_holds(tmp_path):
    path, data = _two_layer(tmp_path)
    source = ArrayData(data)
    cfg = make_config(profile="openvino", method="minmax", min_cosine=0.9999)
    res = quantize(path, tmp_path / "q.onnx", cfg, calib_data=source, eval_data=source)
    assert [r["node"] for r in res.reverted] == ["fc2"]
    assert res.float_reasons()["fc2"] == "reverted: sensitivity"
    assert "fc1" in res.quantized_nodes
    assert res.metrics["cosine"] >= 0.9999
    rev = res.reverted[0]
    assert rev["latency_ms_before"] > 0 and rev["latency_ms_after"] > 0
    assert rev["latency_cost_ms"] == pytest.approx(
        rev["latency_ms_after"] - rev["latency_ms_before"]
    )


def test_fallback_gives_up_with_a_clear_message(tmp_path):
    path, data = _two_layer(tmp_path)
    source = ArrayData(data)
    cfg = make_config(profile="openvino", method="minmax", min_cosine=0.9999, max_reverted=0)
    with pytest.raises(QuantizationError, match=r"budget not met.*max_reverted"):
        quantize(path, tmp_path / "q.onnx", cfg, calib_data=source, eval_data=source)
    assert not (tmp_path / "q.onnx").exists()


def test_budget_without_eval_data_is_refused(tmp_path):
    path, data = _two_layer(tmp_path)
    cfg = make_config(min_cosine=0.99)
    with pytest.raises(QuantizationError, match="evaluation data"):
        quantize(path, tmp_path / "q.onnx", cfg, calib_data=ArrayData(data))


def test_top1_budget_needs_logits():
    from nnship.quantize.evaluate import budget_misses

    with pytest.raises(QuantizationError, match="2-D logits"):
        budget_misses({"cosine": 1.0}, 0.5, None)
