"""A real TensorRT engine, built and run, compared with ONNX Runtime (needs TensorRT + GPU)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from trt_models import qdq_conv, save

from nnship.backends.tensorrt import TensorRtBackend, tensorrt_unavailable_reason

pytestmark = pytest.mark.gpu

_REASON = tensorrt_unavailable_reason()


@pytest.mark.skipif(bool(_REASON), reason=f"real TensorRT engine test skipped: {_REASON}")
def test_real_engine_matches_onnxruntime(tmp_path):
    path = save(qdq_conv(), tmp_path / "model.int8.onnx")
    artifact = TensorRtBackend().compile(
        path, tmp_path / "trt", build_engine="always", max_batch=8, opt_batch=4
    )
    assert artifact.metadata["engine_built"]
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    with TensorRtBackend().load(artifact) as runner:
        got = runner.run({"x": x})["y"]
    # INT8 kernels may round differently from ORT's reference: allow one quantization step.
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max() + 1e-3
