"""Patterns of real ported models that broke pruning (issue 9, defect 2), as tiny modules:
`forward(self, inputs)` driven by inputs declared as `x`, `nn.Conv2d` subclasses that pad with
a `ZeroPad2d` module and call `F.conv2d` with their own weights (TensorFlow "same" padding),
depthwise inverted residuals, and a classifier named `_fc` that is the model output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnship.compress import DistillConfig, PruneConfig, distill, prune
from nnship.sources import ArrayData


class StaticSamePadConv(nn.Conv2d):
    """As EfficientNet ports write it: pad in a submodule, then F.conv2d with self.weight."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride=stride, groups=groups, bias=False)
        pad = max(k - stride, 0)
        self.static_padding = nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.static_padding(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Block(nn.Module):
    def __init__(self, c: int, expand: int = 4) -> None:
        super().__init__()
        h = c * expand
        self._expand_conv, self._bn0 = StaticSamePadConv(c, h, 1), nn.BatchNorm2d(h)
        self._depthwise_conv = StaticSamePadConv(h, h, 3, groups=h)
        self._bn1 = nn.BatchNorm2d(h)
        self._project_conv, self._bn2 = StaticSamePadConv(h, c, 1), nn.BatchNorm2d(c)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._expand_conv(inputs)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        return inputs + self._bn2(self._project_conv(x))


class PortedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._conv_stem, self._bn0 = StaticSamePadConv(3, 16, 3, stride=2), nn.BatchNorm2d(16)
        self._blocks = nn.ModuleList([Block(16), Block(16)])
        self._conv_head, self._bn1 = StaticSamePadConv(16, 64, 1), nn.BatchNorm2d(64)
        self._fc = nn.Linear(64, 10)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        bs = inputs.size(0)
        x = F.relu6(self._bn0(self._conv_stem(inputs)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(F.adaptive_avg_pool2d(x, 1).view(bs, -1))


def _net() -> PortedNet:
    torch.manual_seed(0)
    return PortedNet().eval()


def test_ported_net_prunes_with_a_declared_name_that_is_not_forwards():
    x = {"x": torch.randn(1, 3, 16, 16)}  # forward(self, inputs)
    result = prune(_net(), x, PruneConfig(ratio=0.5))
    assert result.protected == ["_conv_stem", "_fc"]
    assert result.skipped["_fc"] == "model output"
    assert result.module._blocks[0]._expand_conv.out_channels == 32
    assert result.module._blocks[0]._depthwise_conv.groups == 32
    assert result.module._conv_head.out_channels == 32
    assert result.module._fc.out_features == 10
    assert result.module(x["x"]).shape == (1, 10)
    assert result.param_ratio < 0.6


def test_output_layer_is_found_without_being_the_last_linear():
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3)
            self.boxes = nn.Conv2d(16, 4, 1)
            self.scores = nn.Conv2d(16, 2, 1)

        def forward(self, x: torch.Tensor):
            y = torch.relu(self.conv(x))
            return self.boxes(y), torch.softmax(self.scores(y), 1)

    result = prune(TwoHeads(), {"x": torch.randn(1, 3, 8, 8)}, PruneConfig(protect=[]))
    assert result.skipped["boxes"] == result.skipped["scores"] == "model output"
    assert result.module.conv.out_channels == 8


def test_batchnorm_recalibration_and_taylor_with_other_names():
    rng = np.random.default_rng(0)
    data = ArrayData({"x": rng.standard_normal((16, 3, 16, 16)).astype(np.float32)})
    x = {"x": torch.randn(1, 3, 16, 16)}
    result = prune(_net(), x, PruneConfig(ratio=0.5, importance="taylor"), data=data)
    before, after = result.bn_divergence
    assert (after <= before) == bool(result.recalibrated)
    assert result.stale_batchnorm == (not result.recalibrated)


def test_teacher_and_student_with_differently_named_inputs_share_one_array():
    class Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # the teacher's is `inputs`
            return self.net(x)

    rng = np.random.default_rng(0)
    data = ArrayData({"image": rng.standard_normal((8, 3, 16, 16)).astype(np.float32)})
    result = distill(_net(), Student(), data, DistillConfig(epochs=1, batch_size=4))
    assert result.history and result.agreement_after is not None


@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_pruned_ported_net_runs_at_another_batch_size(method):
    result = prune(_net(), {"x": torch.randn(1, 3, 16, 16)}, PruneConfig(method=method, ratio=0.3))
    assert result.module(torch.randn(3, 3, 16, 16)).shape == (3, 10)


def test_pruned_and_distilled_ported_net_saves_with_a_dynamic_batch(tmp_path):
    from nnship.sources.models import load_model, save_pt2

    rng = np.random.default_rng(0)
    data = ArrayData({"x": rng.standard_normal((8, 3, 16, 16)).astype(np.float32)})
    pruned = prune(_net(), {"x": torch.randn(1, 3, 16, 16)}, PruneConfig(ratio=0.5)).module
    student = distill(_net(), pruned, data, DistillConfig(epochs=1, batch_size=4)).student
    path = save_pt2(student, {"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)},
                    tmp_path / "student.pt2")  # fmt: skip
    loaded = load_model(path)
    assert loaded.input_specs[0].name == "x" and loaded.input_specs[0].shape[0] == "batch"
    assert loaded.module(torch.randn(3, 3, 16, 16)).shape == (3, 10)
