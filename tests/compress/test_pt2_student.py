"""A pruned model saved as .pt2, loaded, distilled and saved again keeps its dynamic batch."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from nnship.compress import DistillConfig, PruneConfig, distill, prune
from nnship.core import TensorSpec
from nnship.models import resnet_small
from nnship.sources import ArrayData
from nnship.sources.models import ExportedModule, load_model, save_pt2


def test_pruned_pt2_student_round_trip_keeps_dynamic_batch(tmp_path, caplog):
    torch.manual_seed(0)
    teacher = resnet_small(width=8, in_channels=1, depths=(1, 1), num_classes=4).eval()
    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    data = ArrayData({"x": x})
    example = {"x": x[:1]}
    pruned = prune(teacher, example, PruneConfig(ratio=0.5, round_to=4), data=data).module
    with caplog.at_level(logging.WARNING, logger="nnship.sources.pt2"):
        first = load_model(save_pt2(pruned, example, tmp_path / "pruned.pt2"))
        assert isinstance(first.module, ExportedModule)
        config = DistillConfig(epochs=1, batch_size=8, val_fraction=0.25, patience=None)
        student = distill(teacher, first.module, data, config).student
        assert first.example_inputs is not None
        again = load_model(save_pt2(student, first.example_inputs, tmp_path / "student.pt2"))
    assert "static shapes" not in caplog.text
    assert again.input_specs == [TensorSpec("x", ("batch", 1, 8, 8))]
    batch = torch.from_numpy(np.concatenate([x, x[:3]]))  # 19: not a size seen before
    with torch.no_grad():
        torch.testing.assert_close(again.module(x=batch), student(batch))
    assert again.module(batch).shape == (19, 4)


class _Star(nn.Module):
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return inputs[0] * 2 + inputs[1]


class _FirstThenStar(nn.Module):
    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return first * 2 + rest[0]


@pytest.mark.parametrize("module", [_Star(), _FirstThenStar()], ids=["star", "first-then-star"])
def test_star_args_forward_exports_with_dynamic_batch(tmp_path, caplog, module):
    batch = {"a": np.ones((2, 3), np.float32), "b": np.zeros((2, 3), np.float32)}
    with caplog.at_level(logging.WARNING, logger="nnship.sources.pt2"):
        loaded = load_model(save_pt2(module, batch, tmp_path / "star.pt2"))
    assert "static shapes" not in caplog.text
    assert [s.shape for s in loaded.input_specs] == [("batch", 3), ("batch", 3)]
    out = loaded.module(a=torch.ones(5, 3), b=torch.ones(5, 3))
    assert out.shape == (5, 3) and float(out[0, 0]) == 3.0


def test_resaving_a_positional_program_keeps_its_names(tmp_path):
    class TwoArgs(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a - b

    batch = {"first": np.ones((2, 3), np.float32), "second": np.ones((2, 3), np.float32)}
    loaded = load_model(save_pt2(TwoArgs(), batch, tmp_path / "two.pt2"))
    assert loaded.example_inputs is not None
    again = load_model(save_pt2(loaded.module, loaded.example_inputs, tmp_path / "again.pt2"))
    assert [s.name for s in again.input_specs] == ["first", "second"]
    assert again.input_specs[0].shape == ("batch", 3)
    out = again.module(first=torch.full((4, 3), 3.0), second=torch.ones(4, 3))
    assert float(out[0, 0]) == 2.0
