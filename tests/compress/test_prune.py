"""Pruning options, sparsity, and the errors users can cause."""

from __future__ import annotations

import pytest
import torch
from compress_models import make
from pydantic import ValidationError
from torch import nn

from nnship.compress import PruneConfig, prune
from nnship.compress.structured import keep_count
from nnship.core.errors import CompressionError, DataError
from nnship.models import resnet_small
from nnship.sources import ArrayData


def _resnet():
    torch.manual_seed(0)
    return resnet_small(width=16).eval(), {"x": torch.randn(1, 3, 16, 16)}


def test_keep_count_rounds_to_multiple():
    assert keep_count(64, 0.5, 8) == 32
    assert keep_count(24, 0.3, 8) == 16  # 16.8 -> nearest multiple of 8
    assert keep_count(8, 0.5, 8) == 8  # too small to round: kept whole
    assert keep_count(10, 0.95, 1) == 1  # never empty
    assert keep_count(10, 0.0, 4) == 10


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_unit_interval_is_rejected(ratio):
    with pytest.raises(ValidationError, match="ratio"):
        PruneConfig(ratio=ratio)
    with pytest.raises(ValidationError, match="layer_ratios"):
        PruneConfig(layer_ratios={"conv": ratio})


def test_default_protects_first_conv_and_head():
    model, x = _resnet()
    result = prune(model, x)
    assert result.protected == ["stem.0", "fc"]
    assert result.module.stem[0].out_channels == 16
    assert "stem.0" not in {p for g in result.groups for p in g.producers}
    assert all(g.channels_after % 8 == 0 for g in result.groups)
    assert result.channel_ratio == pytest.approx(0.5)
    assert result.module(**x).shape == (1, 10)
    assert model.layers[0].conv1.out_channels == 16, "the input model is not modified"


def test_unknown_protected_layer_names_the_layer():
    model, x = _resnet()
    with pytest.raises(CompressionError, match="'stem.9'.*did you mean"):
        prune(model, x, PruneConfig(protect=["stem.9"]))
    with pytest.raises(CompressionError, match="layer_ratios key 'nope'"):
        prune(model, x, PruneConfig(layer_ratios={"nope": 0.2}))


def test_layer_ratio_overrides_and_global_scope():
    model, x = _resnet()
    result = prune(
        model, x, PruneConfig(ratio=0.5, scope="global", layer_ratios={"layers.2.conv1": 0.0})
    )
    by_name = {g.name: g for g in result.groups}
    assert by_name["layers.2.conv1"].channels_after == 64
    assert 0.3 < result.channel_ratio < 0.6
    assert all(g.channels_after >= 8 for g in result.groups)


def test_same_inputs_give_same_pruned_model():
    model, x = _resnet()
    a = prune(model, x, PruneConfig(importance="l2")).module.state_dict()
    b = prune(model, x, PruneConfig(importance="l2")).module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_importances_choose_different_channels():
    model, x = _resnet()
    data = ArrayData(
        {"x": torch.randn(16, 3, 16, 16).numpy()}, labels=torch.arange(16).numpy() % 10
    )
    kept = {}
    for importance in ("l1", "bn_scale", "taylor"):
        pruned = prune(model, x, PruneConfig(importance=importance), data=data).module
        kept[importance] = pruned.layers[0].conv1.weight.sum().item()
    assert len(set(kept.values())) == 3


def test_taylor_without_data_or_with_wrong_data():
    model, x = _resnet()
    with pytest.raises(CompressionError, match="taylor.*needs data"):
        prune(model, x, PruneConfig(importance="taylor"))
    image = torch.randn(4, 3, 16, 16).numpy()
    wrong = ArrayData({"image": image, "mask": image})  # one array would bind by position
    with pytest.raises(DataError, match="unexpected"):
        prune(model, x, PruneConfig(importance="taylor"), data=wrong)


def test_unlabelled_taylor_uses_teacher_or_pseudo_labels():
    model, x = _resnet()
    data = ArrayData({"x": torch.randn(8, 3, 16, 16).numpy()})
    own = prune(model, x, PruneConfig(importance="taylor"), data=data)
    torch.manual_seed(1)
    other = resnet_small(width=16).eval()
    taught = prune(model, x, PruneConfig(importance="taylor"), data=data, teacher=other)
    assert own.module(**x).shape == taught.module(**x).shape == (1, 10)


class ControlFlow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:  # data-dependent: fx cannot trace this
            y = -y
        return self.head(y.mean((2, 3)))


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.max() > 0 else x * 2


class Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.block = Gate()
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.conv(x)).mean((2, 3)))


def test_python_control_flow_no_longer_blocks_pruning():
    # The fx-traced graph this test once exercised (an error naming the op) is gone: Torch-
    # Pruning traces through autograd, so data-dependent control flow prunes like any model.
    x = {"x": torch.randn(1, 3, 8, 8)}
    for model in (ControlFlow(), Wrapped()):
        result = prune(model, x, PruneConfig(protect=[], ratio=0.5, round_to=1))
        assert result.module.conv.out_channels == 4
        assert result.module(**x).shape == (1, 2)


def test_unstructured_sparsity_per_layer_and_global():
    model, x = _resnet()
    result = prune(model, x, PruneConfig(method="unstructured", ratio=0.6))
    assert set(result.layer_sparsity) and "stem.0" not in result.layer_sparsity
    assert all(s == pytest.approx(0.6, abs=0.01) for s in result.layer_sparsity.values())
    assert result.params_after == result.params_before  # zeros, not removed
    assert result.nonzero_after < 0.6 * result.nonzero_before
    glob = prune(model, x, PruneConfig(method="unstructured", ratio=0.6, scope="global"))
    values = list(glob.layer_sparsity.values())
    assert max(values) - min(values) > 0.05  # one threshold: layers differ
    assert not any(m._forward_pre_hooks for m in glob.module.modules())


def test_two_four_pattern():
    model = make("flatten_linear")
    x = {"x": torch.randn(1, 3, 4, 4)}
    result = prune(model, x, PruneConfig(method="2:4", protect=[]))
    weight = result.module.classifier[1].weight  # 16 x 32: groups of 4 along the input axis
    nonzero = (weight.reshape(16, 8, 4) != 0).sum(-1)
    assert (nonzero <= 2).all()
    assert result.layer_sparsity["classifier.1"] == pytest.approx(0.5)
    assert "features.0" in result.skipped  # 3 input channels: not a multiple of 4
    with pytest.raises(ValidationError, match="2:4"):
        PruneConfig(method="2:4", ratio=0.3)


def test_pruned_model_exports_to_a_smaller_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    model, x = _resnet()
    pruned = prune(model, x).module
    sizes = {}
    for name, module in (("full", model), ("pruned", pruned)):
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(module, (x["x"],), str(path), dynamo=False, input_names=["x"])
        onnx.checker.check_model(str(path), full_check=True)
        sizes[name] = path.stat().st_size
    assert sizes["pruned"] < 0.5 * sizes["full"]


def test_sensitivity_scope_spares_the_small_sensitive_layers():
    model = make("depthwise")  # expand 1x1 (24 w), depthwise 3x3 (72 w), project (48), head (24)
    rng = torch.Generator().manual_seed(0)
    data = ArrayData({"x": torch.randn(16, 3, 6, 6, generator=rng).numpy()})
    x = {"x": torch.randn(1, 3, 6, 6)}
    config = PruneConfig(method="unstructured", ratio=0.4, scope="sensitivity", protect=[])
    result = prune(model, x, config, data=data)
    assert set(result.sensitivity) == set(result.layer_sparsity)
    assert all(c[-1] > c[0] > 0 for c in result.sensitivity.values())  # error grows with sparsity
    total = sum(dict(model.named_modules())[n].weight.numel() for n in result.layer_sparsity)
    zeros = sum(
        s * dict(model.named_modules())[n].weight.numel() for n, s in result.layer_sparsity.items()
    )
    assert zeros / total == pytest.approx(0.4, abs=0.06)
    assert len(set(result.layer_sparsity.values())) > 1  # spread, not uniform
    with pytest.raises(ValidationError, match="sensitivity"):
        PruneConfig(scope="sensitivity")
