"""Transformer INT8: the residual stream (LayerNorm inputs) stays float, and SmoothQuant with a
per-layer migration strength. Tiny inline encoders carry one outlier channel in the residual
stream / LayerNorm scale, as real pretrained transformers do, so naive placement and a poor
alpha are measurably worse."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnship.backends.onnxruntime.outputs import make_session
from nnship.calibration import collect_statistics, smooth_with_alpha_search
from nnship.calibration.smooth_search import choose_alphas, layer_error
from nnship.core.errors import QuantizationError
from nnship.quantize import make_config, quantize
from nnship.quantize.placement import ensure_node_names, plan_placement
from nnship.quantize.profiles import get_profile
from nnship.quantize.qdq import write_qdq
from nnship.sources import ArrayData

D, T, F = 16, 6, 32
OUTLIER = 3


def _model(nodes, inits, out_dim: int = D) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", T, out_dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def residual_block() -> onnx.ModelProto:
    """x -> Mul(damp) -> MatMul -> Add(+x) -> LayerNorm -> MatMul -> y. The sublayer reads the
    stream through a per-channel scale that damps the outlier channel (as a pre-norm scale
    would); the residual Add feeds LayerNorm and has a quantized producer, so a naive profile
    quantizes the undamped stream there."""
    rng = np.random.default_rng(0)
    damp = np.ones(D, np.float32)
    damp[OUTLIER] = 1.0 / 60.0
    inits = [
        numpy_helper.from_array(damp, "damp"),
        numpy_helper.from_array((rng.normal(size=(D, D)) * 0.3).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.normal(size=(D, D)) * 0.3).astype(np.float32), "w2"),
        numpy_helper.from_array(np.ones(D, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(D, np.float32), "beta"),
    ]
    nodes = [
        helper.make_node("Mul", ["x", "damp"], ["xd"], name="damp"),
        helper.make_node("MatMul", ["xd", "w1"], ["h"], name="attn_out"),
        helper.make_node("Add", ["h", "x"], ["res"], name="residual"),
        helper.make_node("LayerNormalization", ["res", "gamma", "beta"], ["ln"], name="ln"),
        helper.make_node("MatMul", ["ln", "w2"], ["y"], name="ffn"),
    ]
    return _model(nodes, inits)


def ffn_block(gamma_outlier: float = 40.0) -> onnx.ModelProto:
    """x -> LayerNorm (one outlier channel in its scale) -> MatMul -> Gelu-like Relu ->
    MatMul -> Add(+LN output, a post-LN residual) -> y."""
    rng = np.random.default_rng(1)
    gamma = np.ones(D, np.float32)
    gamma[OUTLIER] = gamma_outlier
    inits = [
        numpy_helper.from_array(gamma, "gamma"),
        numpy_helper.from_array(np.zeros(D, np.float32), "beta"),
        numpy_helper.from_array((rng.normal(size=(D, F)) * 0.2).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.normal(size=(F, D)) * 0.2).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], name="ln"),
        helper.make_node("MatMul", ["ln", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["a"], name="act"),
        helper.make_node("MatMul", ["a", "w2"], ["f"], name="fc2"),
        helper.make_node("Add", ["f", "ln"], ["y"], name="residual"),
    ]
    return _model(nodes, inits)


def _stream(n: int, seed: int) -> dict[str, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, T, D)).astype(np.float32)
    x[..., OUTLIER] *= 60.0  # the residual stream's outlier channel
    return {"x": x}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).mean())


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return make_session(model).run(None, feeds)[0]


def _qdq_cosine(model, profile, calib, evaluation) -> tuple[float, list[str]]:
    table = collect_statistics(model, ArrayData(calib))
    ranges = {k: (v.lo, v.hi) for k, v in table.ranges("minmax").items()}
    plan = plan_placement(model, profile, ranges)
    qmodel, _ = write_qdq(model, ranges, plan, profile)
    return _cosine(_run(model, evaluation), _run(qmodel, evaluation)), plan.nodes


def test_residual_add_into_layernorm_stays_float_with_its_reason():
    model = ensure_node_names(residual_block())
    calib = _stream(64, 0)
    table = collect_statistics(model, ArrayData(calib))
    ranges = {k: (v.lo, v.hi) for k, v in table.ranges("minmax").items()}
    plan = plan_placement(model, get_profile("openvino"), ranges)
    reasons = {f.name: f.reason for f in plan.float_nodes}
    assert "residual" not in plan.nodes
    assert "feeds LayerNormalization" in reasons["residual"]
    assert {"attn_out", "ffn"} <= set(plan.nodes)


@pytest.mark.parametrize("profile_name", ["openvino", "tensorrt"])
def test_float_residual_stream_beats_quantizing_it(profile_name):
    model = ensure_node_names(residual_block())
    calib, evaluation = _stream(64, 0), _stream(32, 1)
    ours = get_profile(profile_name)
    naive = dataclasses.replace(ours, float_norm_inputs=False)
    cos_ours, nodes_ours = _qdq_cosine(model, ours, calib, evaluation)
    cos_naive, nodes_naive = _qdq_cosine(model, naive, calib, evaluation)
    assert "residual" in nodes_naive and "residual" not in nodes_ours
    # The per-tensor scale of the outlier channel (|x| ~ 60*3) wipes out the others.
    assert 1.0 - cos_ours < 0.5 * (1.0 - cos_naive)


def test_per_layer_search_moves_the_outlier_into_the_weights():
    model = ffn_block()
    calib = _stream(64, 0)
    table = collect_statistics(model, ArrayData(calib))
    rows = {"ln": _run_tensor(model, "ln", calib)}
    alphas, records = choose_alphas(model, table, rows, grid=(0.3, 0.5, 0.8, 0.95))
    (record,) = records
    assert record["tensor"] == "ln" and alphas["ln"] == record["alpha"] is not None
    assert record["error_chosen"] < 0.5 * record["error_plain"]
    x = rows["ln"].astype(np.float64)
    w = numpy_helper.to_array(model.graph.initializer[2]).astype(np.float64)
    assert layer_error(x, [w], None, symmetric=False) == pytest.approx(record["error_plain"])


def _run_tensor(model: onnx.ModelProto, name: str, feeds) -> np.ndarray:
    from nnship.onnx.graph import add_outputs

    session = make_session(add_outputs(model, [name]))
    value = session.run([name], feeds)[0]
    return value.reshape(-1, value.shape[-1])


def test_search_keeps_the_model_equivalent_and_records_every_layer():
    model = ffn_block()
    calib = _stream(32, 0)
    table = collect_statistics(model, ArrayData(calib))
    out, report = smooth_with_alpha_search(model, table, ArrayData(calib), max_samples=16)
    onnx.checker.check_model(out, full_check=True)
    ref, got = _run(model, calib), _run(out, calib)
    assert np.abs(ref - got).max() <= 1e-4 * np.abs(ref).max()
    assert report.alpha == "per-layer" and {r["tensor"] for r in report.search} == {"ln", "a"}
    smoothed = {s.tensor: s.alpha for s in report.smoothed}
    assert smoothed.get("ln") is not None  # the outlier tensor is smoothed
    for tensor, reason in report.skipped:
        if tensor == "a":
            assert "per-layer search" in reason


def test_quantize_with_per_layer_smoothing_beats_a_fixed_low_alpha(tmp_path):
    model = ffn_block()
    path = tmp_path / "ffn.onnx"
    onnx.save(model, str(path))
    calib, evaluation = ArrayData(_stream(64, 0)), ArrayData(_stream(48, 1))
    cosines = {}
    for alpha in ("auto", 0.5, None):
        config = make_config(
            profile="onnxruntime",
            method="minmax",
            smoothing="off" if alpha is None else "on",
            smoothing_alpha=alpha,
            bias_correction="off",
        )
        result = quantize(
            path, tmp_path / f"q_{alpha}.onnx", config, calib_data=calib, eval_data=evaluation
        )
        cosines[alpha] = result.metrics["cosine"]
        if alpha == "auto":
            (record,) = result.applied_transforms
            assert record["report"]["alpha"] == "per-layer" and record["report"]["search"]
    assert 1 - cosines["auto"] < 1 - cosines[None]
    assert cosines["auto"] >= cosines[0.5] - 1e-6


def test_smoothing_alpha_outside_zero_one_is_rejected():
    with pytest.raises(QuantizationError, match="smoothing_alpha"):
        make_config(smoothing_alpha=1.5)
    assert make_config().smoothing_alpha == "auto"
