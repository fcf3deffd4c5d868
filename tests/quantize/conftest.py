"""Fixtures: tiny real models exported to ONNX, data, and a small in-memory range table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nnship.onnx.graph import add_outputs


class MinMaxTable:
    """A minimal stand-in for `nnship.calibration.CalibrationTable`: it keeps every activation
    value (fine for tiny test models) and answers minmax/percentile ranges."""

    def __init__(self, model_path: Path, inputs: dict[str, np.ndarray]) -> None:
        model = onnx.load(str(model_path))
        names = [o for n in model.graph.node for o in n.output if o]
        names += [i.name for i in model.graph.input]
        session = ort.InferenceSession(
            add_outputs(model, names).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        outs = session.run(None, inputs)
        self.values = {
            o.name: np.asarray(v, dtype=np.float64).ravel()
            for o, v in zip(session.get_outputs(), outs)
            if np.asarray(v).dtype.kind == "f"
        }
        self.calls: list[tuple[str, dict]] = []

    def ranges(self, method: str = "minmax", **params):
        self.calls.append((method, params))
        if method == "minmax":
            return {k: (float(v.min()), float(v.max())) for k, v in self.values.items()}
        if method in ("percentile", "entropy", "mse"):
            p = params.get("percentile", 99.99) if method == "percentile" else 99.0
            out = {}
            for k, v in self.values.items():
                out[k] = (float(np.percentile(v, 100 - p)), float(np.percentile(v, p)))
            return out
        raise ValueError(f"unknown method {method}")

    def degenerate_tensors(self):
        return {}


class TinyCnn(nn.Module):
    """Conv-BN-ReLU stem, a depthwise block with a residual add, GAP, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6()
        )
        self.pw = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = torch.relu(y + self.pw(self.dw(y)))
        return self.fc(y.mean((2, 3)))


def export(module: nn.Module, args: tuple, path: Path, names: list[str]) -> Path:
    """TorchScript export (about 20x faster than dynamo here; the models are plain ops)."""
    module.eval()
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=names,
        output_names=["output"],
        dynamic_axes={n: {0: "batch"} for n in names},
        opset_version=17,
        dynamo=False,
    )
    return path


@pytest.fixture(scope="session")
def cnn_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    module = TinyCnn()
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    return export(module, (torch.randn(2, 3, 16, 16),), path, ["x"])


@pytest.fixture(scope="session")
def cnn_data() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(0).standard_normal((48, 3, 16, 16)).astype(np.float32)}


@pytest.fixture(scope="session")
def encoder_path(tmp_path_factory) -> Path:
    from nnship.models import encoder_small

    torch.manual_seed(0)
    module = encoder_small(vocab_size=17, max_len=16, d_model=16, heads=2, layers=1)
    ids = torch.randint(0, 17, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    path = tmp_path_factory.mktemp("enc") / "enc.onnx"
    return export(module, (ids, mask), path, ["input_ids", "attention_mask"])


@pytest.fixture(scope="session")
def encoder_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 17, (32, 16)).astype(np.int64)
    mask = np.ones_like(ids)
    for row in range(32):
        mask[row, rng.integers(4, 17) :] = 0
    return {"input_ids": ids, "attention_mask": mask}
