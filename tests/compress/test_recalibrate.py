"""BatchNorm recalibration after pruning, on a tiny ResNet trained on the real digits."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nnship.compress import PruneConfig, prune
from nnship.compress.recalibrate import recalibrate_batchnorm
from nnship.models import resnet_small
from nnship.models.train import accuracy, train_classifier
from nnship.sources import ArrayData

X = {"x": torch.zeros(1, 1, 8, 8)}


@pytest.fixture(scope="module")
def resnet(digits_splits):
    """resnet_small(width=8, two stages) trained 3 epochs on the 8x8 digits (~84% test)."""
    train, _ = digits_splits
    torch.manual_seed(0)
    model = resnet_small(width=8, in_channels=1, depths=(1, 1))
    return train_classifier(model, train, epochs=3, seed=0)


@pytest.fixture(scope="module")
def unlabeled(digits_splits):
    train, _ = digits_splits
    return ArrayData({"x": train.inputs["x"][:256]})


def test_recalibration_makes_the_pruned_model_meaningful(resnet, unlabeled, digits_splits):
    _, test = digits_splits
    config = PruneConfig(ratio=0.5, round_to=4)
    stale = prune(resnet, X, config)
    fixed = prune(resnet, X, config, data=unlabeled)
    assert stale.stale_batchnorm and not stale.recalibrated
    assert not fixed.stale_batchnorm and "layers.1.bn2" in fixed.recalibrated
    acc_stale, acc_fixed = accuracy(stale.module, test), accuracy(fixed.module, test)
    assert acc_fixed > 0.4, f"chance is 0.1; recalibrated {acc_fixed:.3f}"
    assert acc_fixed > acc_stale + 0.2, (acc_stale, acc_fixed)
    assert fixed.to_dict()["recalibrated_bn"] == fixed.recalibrated
    # only statistics change: the weights are those of the stale model
    stale_state, fixed_state = stale.module.state_dict(), fixed.module.state_dict()
    for key, value in stale_state.items():
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(value, fixed_state[key]), key


def test_recalibration_can_be_turned_off(resnet, unlabeled):
    result = prune(resnet, X, PruneConfig(ratio=0.5, recalibrate_bn=False), data=unlabeled)
    assert result.stale_batchnorm and not result.recalibrated


class ConvBn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, momentum=0.3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))


def test_statistics_are_the_data_statistics_and_modes_are_restored(digits_splits):
    train, _ = digits_splits
    x = train.inputs["x"][:64]
    torch.manual_seed(0)
    model = ConvBn().train()
    # one batch: the cumulative average (momentum=None) is that batch's statistics exactly
    names = recalibrate_batchnorm(model, ArrayData({"x": x}), max_samples=64, batch_size=64)
    assert names == ["bn"]
    with torch.no_grad():
        features = model.conv(torch.from_numpy(x))
    torch.testing.assert_close(model.bn.running_mean, features.mean((0, 2, 3)))
    torch.testing.assert_close(model.bn.running_var, features.var((0, 2, 3), unbiased=True))
    assert model.bn.momentum == 0.3 and not model.training and not model.drop.training


def test_recalibration_that_moves_away_from_the_reference_is_rejected():
    from nnship.compress.recalibrate import recalibrate_if_closer

    torch.manual_seed(0)
    model = resnet_small(width=8).eval()
    for m in model.modules():  # trained-looking statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    student = copy.deepcopy(model)  # identical: any change of statistics moves it away
    narrow = ArrayData({"x": (torch.randn(8, 3, 16, 16) * 0.1 + 2.0).numpy()})
    names, before, after = recalibrate_if_closer(student, model, narrow, batch_size=8)
    assert names == [] and before == 0.0 and after > 0.0
    for a, b in zip(model.state_dict().values(), student.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # statistics put back
