import numpy as np
import onnx
import pytest
from conftest import MinMaxTable  # at import, while tests/quantize/conftest.py is "conftest"
from onnx import helper, numpy_helper

from nnship.core.errors import QuantizationError
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


def _three_layer(tmp_path):
    """x -> fc0 -> a -> fc1 -> h -> fc2 -> y with an outlier channel in h (fc2 is sensitive)."""
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((16, 16)).astype(np.float32)
    w1 = rng.standard_normal((16, 16)).astype(np.float32)
    w1[0] *= 200.0
    w2 = rng.standard_normal((8, 16)).astype(np.float32)
    w2[:, 0] = 0.0
    nodes = [
        helper.make_node("Gemm", ["x", "W0"], ["a"], name="fc0", transB=1),
        helper.make_node("Gemm", ["a", "W1"], ["h"], name="fc1", transB=1),
        helper.make_node("Gemm", ["h", "W2"], ["y"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "three",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w, n) for w, n in ((w0, "W0"), (w1, "W1"), (w2, "W2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model, {"x": rng.standard_normal((64, 16)).astype(np.float32)}


def test_a_revert_that_hurts_is_undone_and_the_fallback_never_ends_worse(tmp_path):
    """The rebuilt model of the first-ranked revert is broken (as a stale transform or a
    mismatched Q/DQ pair would break it): the fallback must undo that step, keep going, and
    end at least as faithful as it started."""
    from nnship.backends.onnxruntime.outputs import run_model
    from nnship.quantize.evaluate import compare, score
    from nnship.quantize.fallback import accuracy_fallback

    model, data = _three_layer(tmp_path)
    source = ArrayData(data)
    profile = get_profile("openvino")
    ranges = {"x": (-4.0, 4.0), "a": (-20.0, 20.0), "h": (-3000.0, 3000.0), "y": (-50.0, 50.0)}
    first = rank_sensitivity(
        model, write_qdq(model, ranges, plan_placement(model, profile, ranges), profile)[0],
        plan_placement(model, profile, ranges), source, max_samples=32,
    )[0][0]  # fmt: skip

    def build(force):
        plan = plan_placement(model, profile, ranges, force_float=force)
        qmodel, _ = write_qdq(model, ranges, plan, profile)
        if first in force and len(force) == 1:  # this step's model is broken: outputs negated
            out = qmodel.graph.output[0].name
            producer = next(n for n in qmodel.graph.node if out in n.output)
            producer.output[0] = out + "_pre"
            qmodel.graph.node.append(helper.make_node("Neg", [out + "_pre"], [out]))
        return qmodel, plan

    start = build({})
    reference = run_model(model, source)
    before = compare(reference, run_model(start[0], source))
    outcome = accuracy_fallback(
        build, model, start, reference, source, source,
        max_top1_drop=None, min_cosine=0.99999, max_reverted=3, raise_on_miss=False,
    )  # fmt: skip
    assert [u["node"] for u in outcome.undone] == [first]
    assert "undone" in outcome.undone[0]["decision"]
    assert first not in [r["node"] for r in outcome.reverted]
    assert score(outcome.metrics) >= score(before)


def test_fallback_names_reverted_nodes_by_torch_module(tmp_path):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8))

        def forward(self, x):
            return self.body(x)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.body[2].weight[:, :4] *= 50.0
    path = tmp_path / "net.onnx"
    torch.onnx.export(
        net, (torch.zeros(1, 16),), str(path), input_names=["x"],
        dynamic_axes={"x": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    source = ArrayData({"x": rng.standard_normal((64, 16)).astype(np.float32)})
    cfg = make_config(method="minmax", min_cosine=0.99999999, max_reverted=1)
    try:
        res = quantize(path, tmp_path / "q.onnx", cfg, calib_data=source, eval_data=source)
        steps = res.reverted
    except QuantizationError as exc:  # budget not met: the message names the module
        assert "body." in str(exc)
        return
    assert steps and all(s["module"].startswith("body.") for s in steps)


def test_ranking_holds_only_computing_nodes_and_reads_what_consumers_see(cnn_path, cnn_data):
    """A Clip folded into its Conv's Q/DQ is no revert candidate (reverting it hands the Conv's
    wide pre-activation range to the Q/DQ: issue 9 point 8), and the Conv is ranked on the
    clipped tensor its consumer reads, not on the unclipped one that carries the Clip's name."""
    from nnship.quantize.pipeline import preprocess

    model = preprocess(onnx.load(str(cnn_path)))
    path = cnn_path.parent / "pre.onnx"
    onnx.save(model, str(path))
    profile = get_profile("onnxruntime")
    ranges = MinMaxTable(path, cnn_data).ranges("minmax")
    plan = plan_placement(model, profile, ranges)
    assert "Clip" in {plan.op_types[n] for n in plan.nodes}  # the ReLU6 is a planned node
    qmodel, _ = write_qdq(model, ranges, plan, profile)
    ranking = rank_sensitivity(model, qmodel, plan, ArrayData(cnn_data), max_samples=16)
    assert {plan.op_types[n] for n, _ in ranking} <= {"Conv", "Gemm", "Add"}
    assert all(np.isfinite(s) and s < 1.0 for _, s in ranking)  # int8 noise, not clipping
    assert sum(s > 0 for _, s in ranking) >= 1
