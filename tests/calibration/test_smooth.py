"""SmoothQuant activation smoothing: outputs unchanged, outlier channels flattened, LayerNorm
folding when possible, a Mul otherwise."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from calib_models import make_model, max_rel, run
from onnx import TensorProto, helper, numpy_helper

from nnship.calibration import collect_statistics, smooth_activations
from nnship.core.errors import CalibrationError
from nnship.sources import ArrayData

K = 8


def pre_ln_block(residual: bool = False) -> onnx.ModelProto:
    """x[N,T,8] -> LayerNorm -> {MatMul q, Gemm-like MatMul k} (+ residual Add if asked)."""
    rng = np.random.default_rng(0)
    gamma = np.ones(K, np.float32)
    gamma[2] = 40.0  # an outlier channel, as in transformer activations
    inits = [
        numpy_helper.from_array(gamma, "gamma"),
        numpy_helper.from_array(rng.normal(size=K).astype(np.float32), "beta"),
        numpy_helper.from_array(rng.normal(size=(K, 4)).astype(np.float32), "wq"),
        numpy_helper.from_array(rng.normal(size=(K, 4)).astype(np.float32), "wk"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], name="ln", axis=-1),
        helper.make_node("MatMul", ["h", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["h", "wk"], ["k"], name="k_proj"),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 5, 4]) for n in "qk"]
    if residual:
        nodes.append(helper.make_node("Add", ["h", "x"], ["res"], name="residual"))
        outputs.append(helper.make_tensor_value_info("res", TensorProto.FLOAT, ["N", 5, K]))
    return make_model(
        nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, K])], outputs, inits
    )


def _data() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).normal(size=(32, 5, K)).astype(np.float32)}


def _check_equivalent(a: onnx.ModelProto, b: onnx.ModelProto, feeds) -> None:
    onnx.checker.check_model(b, full_check=True)
    for ref, got in zip(run(a, feeds), run(b, feeds)):
        assert max_rel(ref, got) < 1e-4


def test_folds_into_layernorm_when_it_only_feeds_matmuls():
    model = pre_ln_block()
    table = collect_statistics(model, ArrayData(_data()))
    out, report = smooth_activations(model, table, alpha=0.5)
    _check_equivalent(model, out, _data())
    (item,) = report.smoothed
    assert item.tensor == "h" and item.mode == "folded into LayerNormalization 'ln'"
    assert sorted(item.nodes) == ["k_proj", "q_proj"]
    assert len(out.graph.node) == len(model.graph.node)  # no node added
    assert item.spread_after < item.spread_before / 3


def test_inserts_a_mul_when_the_layernorm_output_also_feeds_a_residual():
    model = pre_ln_block(residual=True)
    table = collect_statistics(model, ArrayData(_data()))
    out, report = smooth_activations(model, table)
    _check_equivalent(model, out, _data())
    (item,) = report.smoothed
    assert item.mode.startswith("inserted Mul")
    assert [n.op_type for n in out.graph.node].count("Mul") == 1


def test_without_mul_insertion_the_tensor_is_skipped_and_weights_restored():
    model = pre_ln_block(residual=True)
    table = collect_statistics(model, ArrayData(_data()))
    out, report = smooth_activations(model, table, insert_mul=False)
    assert not report.applied and "insert_mul off" in dict(report.skipped)["h"]
    for a, b in zip(model.graph.initializer, out.graph.initializer):
        np.testing.assert_allclose(numpy_helper.to_array(a), numpy_helper.to_array(b), rtol=1e-6)


def test_bad_alpha_is_rejected():
    model = pre_ln_block()
    table = collect_statistics(model, ArrayData(_data()))
    with pytest.raises(CalibrationError, match="alpha"):
        smooth_activations(model, table, alpha=1.5)


@pytest.mark.slow
def test_exported_encoder_stays_equivalent_and_skips_the_mask_path(tmp_path):
    import torch

    from nnship.datasets import digits_tokens
    from nnship.models import encoder_small

    torch.manual_seed(0)
    net = encoder_small(vocab_size=17, max_len=64, d_model=16, heads=2, layers=1).eval()
    train, _ = digits_tokens()
    feeds = {k: v[:32] for k, v in train.inputs.items()}
    path = tmp_path / "enc.onnx"
    example = tuple(torch.from_numpy(feeds[k][:2]) for k in ("input_ids", "attention_mask"))
    torch.onnx.export(net, example, str(path), input_names=["input_ids", "attention_mask"],
                      output_names=["output"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": {0: "N"}, "attention_mask": {0: "N"}})  # fmt: skip
    model = onnx.load(str(path))
    table = collect_statistics(path, ArrayData(feeds))
    assert any("attention-mask" in r for r in table.degenerate_tensors().values())
    out, report = smooth_activations(model, table)
    assert len(report.smoothed) >= 3  # q/k/v input, attention output, both MLP matmuls
    assert any("non-constant B" in reason for _, reason in report.skipped)  # q @ k^T
    _check_equivalent(model, out, feeds)
