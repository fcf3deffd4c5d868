"""`nnship explain`: per-layer drift of real quantized / FP16 models against their float model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from nnship.core.errors import DataError, OnnxModelError
from nnship.metrics.layer_match import match_layers, torch_module_names
from nnship.sources import ArrayData
from nnship.validate import Report
from nnship.validate.explain.layers import attach_layer_drift, explain, rank_layers
from nnship.validate.render.markdown import save_with_markdown
from nnship.validate.report import Row

CORRUPTED = "/features/features.4/Conv"  # the second conv block of digits_cnn


@pytest.fixture(scope="module")
def digits():
    from nnship.datasets import digits_images

    train, test = digits_images(seed=0)
    return train.inputs["x"][:64], test.inputs["x"][:32]


@pytest.fixture(scope="module")
def float_onnx(tmp_path_factory, digits):
    """digits_cnn (width 8, seeded, BatchNorm statistics from a few real batches) exported by
    the TorchScript exporter, which names nodes after torch modules."""
    import torch

    from nnship.core import TensorSpec
    from nnship.exporter import export_onnx
    from nnship.exporter.config import ExportConfig
    from nnship.models import digits_cnn

    torch.manual_seed(0)
    model = digits_cnn(width=8)
    model.train()
    with torch.no_grad():  # realistic BatchNorm statistics, no training loop needed
        for _ in range(5):
            model(torch.from_numpy(digits[0]))
    model.eval()
    path = tmp_path_factory.mktemp("explain") / "model.onnx"
    export_onnx(
        model,
        path,
        input_specs=[TensorSpec("x", (1, 1, 8, 8))],
        options=ExportConfig(exporter="torchscript"),
    )
    return path


@pytest.fixture(scope="module")
def qdq_onnx(float_onnx, digits):
    """The float model quantized by ONNX Runtime's `quantize_static` (QDQ, per-channel)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    calib = digits[0]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"x": calib[i : i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self):
            return next(self.batches, None)

    path = float_onnx.with_name("model.int8.onnx")
    quantize_static(float_onnx, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    return path


def _corrupt(qdq_path, node_name: str, out_path, factor: float = 50.0):
    """Make the Q/DQ pair after `node_name`'s output use a `factor` x too large scale."""
    model = onnx.load(qdq_path)
    producer = next(n for n in model.graph.node if n.name == node_name)
    q = next(
        n
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] in producer.output
    )
    inits = {i.name: i for i in model.graph.initializer}
    scale = numpy_helper.to_array(inits[q.input[1]]) * factor
    model.graph.initializer.append(numpy_helper.from_array(scale.astype(np.float32), "bad_scale"))
    for n in model.graph.node:
        if n is q or (n.op_type == "DequantizeLinear" and n.input[0] == q.output[0]):
            n.input[1] = "bad_scale"
    onnx.save(model, out_path)
    return out_path


@pytest.fixture(scope="module")
def corrupted_onnx(qdq_onnx):
    return _corrupt(qdq_onnx, CORRUPTED, qdq_onnx.with_name("model.bad.onnx"))


@pytest.fixture(scope="module")
def data(digits):
    return ArrayData({"x": digits[1]})


def test_corrupted_layer_is_ranked_first_and_suggested(float_onnx, corrupted_onnx, data) -> None:
    result = explain(float_onnx, corrupted_onnx, data, max_samples=16)
    first = result.layers[0]
    assert first.onnx_node == CORRUPTED
    assert first.torch_module == "features.4"
    assert result.suggested_exclusions == [CORRUPTED]
    # by a wide margin: the next layer adds far less noise of its own
    assert first.local_sqnr_db is not None and first.local_sqnr_db < 25
    assert result.layers[1].local_sqnr_db is None or result.layers[1].local_sqnr_db > 35


def test_downstream_layers_are_not_blamed_for_inherited_noise(
    float_onnx, corrupted_onnx, data
) -> None:
    layers = {d.layer: d for d in explain(float_onnx, corrupted_onnx, data, max_samples=16).layers}
    last = layers["/classifier/classifier.3/Gemm"]
    assert last.sqnr_db is not None and last.sqnr_db < 25  # the whole artifact drifts here...
    assert last.local_sqnr_db is not None and last.local_sqnr_db > 35  # ...but not because of it


def test_clean_quantization_suggests_nothing(float_onnx, qdq_onnx, data) -> None:
    result = explain(float_onnx, qdq_onnx, data, max_samples=16)
    assert result.suggested_exclusions == []
    assert result.coverage >= 0.6
    assert result.matched_by.get("qdq", 0) >= 5
    assert all(d.local_sqnr_db is None or d.local_sqnr_db > 30 for d in result.layers)
    assert result.artifact == "onnxruntime/int8"
    assert result.samples == 16


def test_rank_layers_is_the_plain_ranking(float_onnx, corrupted_onnx, data) -> None:
    ranked = rank_layers(float_onnx, corrupted_onnx, data, max_samples=8)
    assert ranked[0].onnx_node == CORRUPTED
    assert [d.local_sqnr_db or np.inf for d in ranked] == sorted(
        d.local_sqnr_db or np.inf for d in ranked
    )


def test_renamed_graph_is_matched_by_op_order(float_onnx, corrupted_onnx, data, tmp_path) -> None:
    model = onnx.load(corrupted_onnx)
    outputs = {o.name for o in model.graph.output}
    renamed = {}
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}"
        for j, out in enumerate(node.output):
            if out not in outputs:
                renamed[out] = f"t{i}_{j}"
    for node in model.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    path = tmp_path / "renamed.onnx"
    onnx.save(model, path)
    result = explain(float_onnx, path, data, max_samples=8)
    assert result.matched_by.get("order", 0) >= 5
    assert result.layers[0].onnx_node == CORRUPTED  # the float twin, usable with --exclude
    assert result.layers[0].torch_module == "features.4"


def test_fp16_model_through_casts(float_onnx, data, tmp_path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp16 = convert_float_to_float16(onnx.load(float_onnx), keep_io_types=True)
    from onnxruntime.quantization.onnx_model import ONNXModel

    ONNXModel(fp16).topological_sort()
    path = tmp_path / "model.fp16.onnx"
    onnx.save(fp16, path)
    result = explain(float_onnx, path, data, max_samples=8)
    assert result.artifact == "onnxruntime/fp16"
    assert result.coverage == 1.0
    assert all(d.sqnr_db is None or d.sqnr_db > 50 for d in result.layers)


def test_torch_module_names_from_each_source() -> None:
    model = onnx.parser.parse_model(
        """
        <ir_version: 8, opset_import: ["" : 18]>
        g (float[N, 4] x) => (float[N, 4] y) <float[4, 4] w = {1.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,1.0}>
        {
            a = Relu(x)
            b = MatMul(a, w)
            y = Relu(b)
        }
        """
    )
    model.graph.initializer[0].name = "blocks.0.fc.weight"
    relu, matmul, last = model.graph.node
    matmul.input[1] = "blocks.0.fc.weight"
    relu.name, matmul.name, last.name = "node_relu", "node_linear", "/blocks/blocks.0/act/Relu"
    relu.metadata_props.add(
        key="pkg.torch.onnx.name_scopes", value="['', 'stem', 'stem.act', 'relu']"
    )
    names = torch_module_names(model)
    assert names == {
        "node_relu": "stem.act",  # dynamo metadata
        "node_linear": "blocks.0.fc",  # parameter name
        "/blocks/blocks.0/act/Relu": "blocks.0.act",  # TorchScript scope
    }


@pytest.mark.slow
def test_dynamo_export_maps_layers_to_modules(tmp_path) -> None:
    import torch

    from nnship.core import TensorSpec
    from nnship.exporter import export_onnx
    from nnship.exporter.config import ExportConfig
    from nnship.models import digits_cnn

    torch.manual_seed(0)
    path = tmp_path / "dynamo.onnx"
    spec = [TensorSpec("x", (1, 1, 8, 8))]
    export_onnx(digits_cnn(width=8).eval(), path, input_specs=spec, options=ExportConfig())
    names = torch_module_names(onnx.load(path))
    convs = [n.name for n in onnx.load(path).graph.node if n.op_type == "Conv"]
    assert [names[c] for c in convs] == ["features.0", "features.4"]
    path2 = tmp_path / "dynamo_raw.onnx"
    export_onnx(
        digits_cnn(width=8).eval(), path2, input_specs=spec, options=ExportConfig(simplify=False)
    )
    raw = torch_module_names(onnx.load(path2))
    relus = [n.name for n in onnx.load(path2).graph.node if n.op_type == "Relu"]
    assert [raw[r] for r in relus] == ["features.2", "features.6", "classifier.2"]  # metadata


def test_models_with_other_inputs_do_not_correspond(float_onnx, tmp_path, data) -> None:
    model = onnx.load(float_onnx)
    model.graph.input[0].name = "image"
    for node in model.graph.node:
        node.input[:] = ["image" if n == "x" else n for n in node.input]
    path = tmp_path / "other.onnx"
    onnx.save(model, path)
    with pytest.raises(OnnxModelError, match="does not correspond.*inputs"):
        explain(float_onnx, path, data)


def test_unrelated_graph_is_refused_by_coverage(float_onnx, tmp_path, data) -> None:
    w = numpy_helper.from_array(np.ones((64, 10), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["output"]),
        ],
        "other",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 10])],
        [w],
    )
    path = tmp_path / "unrelated.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    with pytest.raises(OnnxModelError, match=r"do not correspond: only \d+ of \d+"):
        explain(float_onnx, path, data)


def test_data_that_does_not_fit_is_refused(float_onnx, qdq_onnx) -> None:
    wrong_shape = ArrayData({"x": np.zeros((4, 1, 6, 6), np.float32)})
    with pytest.raises(DataError, match="'x'"):
        explain(float_onnx, qdq_onnx, wrong_shape)
    wrong_name = ArrayData({"image": np.zeros((4, 1, 8, 8), np.float32)})
    with pytest.raises(DataError, match="x"):
        explain(float_onnx, qdq_onnx, wrong_name)


def test_matching_goes_through_qdq_pairs(float_onnx, qdq_onnx) -> None:
    matching = match_layers(onnx.load(float_onnx), onnx.load(qdq_onnx))
    by_tensor = {m.float_tensor: m for m in matching.matches}
    relu = by_tensor["/features/features.6/Relu_output_0"]  # Relu folded into the Conv
    assert relu.node == CORRUPTED
    assert relu.other_tensor.endswith("_DequantizeLinear_Output")
    assert relu.matched_by == "qdq"


def test_attaching_layer_drift_replaces_the_artifacts_entries(
    float_onnx, corrupted_onnx, data, tmp_path
) -> None:
    report = Report(baseline=Row(label="onnx/fp32"), rows=[Row(label="onnxruntime/int8")])
    path = report.save(tmp_path / "report.json")
    result = explain(float_onnx, corrupted_onnx, data, max_samples=8)
    for _ in range(2):  # attached twice: the second replaces the first
        save_with_markdown(attach_layer_drift(Report.load(path), result), path)
    loaded = Report.load(path)
    assert loaded.layer_drift is not None
    assert len(loaded.layer_drift) == len(result.layers)
    assert loaded.layer_drift[0].onnx_node == CORRUPTED


@pytest.mark.slow
def test_cli_explain_prints_ranking_and_writes_json(
    run_cli, float_onnx, corrupted_onnx, digits, tmp_path
) -> None:
    npz = tmp_path / "calib.npz"
    np.savez(npz, x=digits[1][:16])
    out = tmp_path / "explain.json"
    proc = run_cli("explain", float_onnx, corrupted_onnx, "--data", npz, "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert f"--exclude {CORRUPTED}" in proc.stdout
    saved = json.loads(out.read_text())
    assert saved["layers"][0]["torch_module"] == "features.4"
    bad = run_cli("explain", float_onnx, tmp_path / "missing.onnx", "--data", npz)
    assert bad.returncode == 2
    assert "missing.onnx" in bad.stderr
