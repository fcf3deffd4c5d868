"""Tiny models for each channel-coupling kind, and a helper that makes chosen channels dead.

A dead channel has every weight that produces or reads it zeroed (BatchNorm gamma/beta too), so
it contributes exactly nothing: pruning it must leave the model's outputs unchanged. L1
importance ranks dead channels last, so a ratio equal to the dead fraction removes exactly them.
"""

from __future__ import annotations

import torch
from torch import nn

from nnship.compress.structured import build_graph, call_order_and_outputs, prunable_groups


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.conv0(x)))
        y = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.bn2(self.conv2(y)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6()
        )
        self.project = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(self.dw(self.expand(x)))
        return self.head(x.mean((2, 3)))


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 6, 1)
        self.bn = nn.BatchNorm2d(10)
        self.c = nn.Conv2d(10, 6, 3, stride=2, padding=1)
        self.head = nn.Linear(6 * 2 * 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
        x = torch.relu(self.c(x))
        return self.head(x.view(x.size(0), -1))


class FlattenLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


COUPLING_MODELS = {
    "residual": Residual,
    "depthwise": Depthwise,
    "concat": Concat,
    "flatten_linear": FlattenLinear,
}


def make(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = COUPLING_MODELS[name]().eval()
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


@torch.no_grad()
def kill_channels(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, int]:
    """Zero every slice of every odd channel of each prunable group (output layers excluded),
    everywhere Torch-Pruning's dependency graph says the channel is used; returns group name ->
    size."""
    _, outputs = call_order_and_outputs(model, inputs)
    graph = build_graph(model, inputs)
    groups, _ = prunable_groups(model, graph, outputs)
    modules = dict(model.named_modules())
    sizes = {}
    for group in groups:
        sizes[group.name] = group.size
        root = modules[group.name]
        odd = list(range(1, group.size, 2))
        tp_group = graph.get_pruning_group(
            root, graph.get_pruner_of_module(root).prune_out_channels, odd
        )
        for dep, idxs in tp_group:
            module = dep.target.module
            if not isinstance(module, nn.Module) or not idxs:
                continue
            out = graph.is_out_channel_pruning_fn(dep.handler)
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if weight is None:
                continue
            if isinstance(module, nn.Embedding) or not out:
                if weight.ndim >= 2 and (getattr(module, "groups", 1) == 1 or out):
                    weight[:, idxs] = 0
                continue
            weight[idxs] = 0
            if bias is not None:
                bias[idxs] = 0
    return sizes
