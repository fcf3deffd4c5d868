"""Each coupling kind: the groups found, and an exact prune of dead channels."""

from __future__ import annotations

import pytest
import torch
from compress_models import COUPLING_MODELS, kill_channels, make
from torch import nn

from nnship.compress import PruneConfig, prune
from nnship.compress.structured import build_graph, call_order_and_outputs, prunable_groups


def _groups(model, inputs):
    _, outputs = call_order_and_outputs(model, inputs)
    groups, _ = prunable_groups(model, build_graph(model, inputs), outputs)
    return {g.name: g for g in groups}


def _touched(model, inputs, layer: str, idxs: list[int]) -> dict[tuple[str, str], list[int]]:
    """(layer, "out"/"in") -> the indices Torch-Pruning's group for `layer`'s output channels
    `idxs` removes there."""
    graph = build_graph(model, inputs)
    names = {m: n for n, m in model.named_modules()}
    root = dict(model.named_modules())[layer]
    group = graph.get_pruning_group(root, graph.get_pruner_of_module(root).prune_out_channels, idxs)
    out = {}
    for dep, ids in group:
        if dep.target.module in names:
            role = "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
            out[(names[dep.target.module], role)] = sorted(ids)
    return out


def test_residual_add_couples_every_branch(image):
    model = make("residual")
    groups = _groups(model, image)
    stream = groups["conv0"]
    assert stream.producers == ["conv0", "conv2"]
    touched = _touched(model, image, "conv0", [0])
    assert {n for n, role in touched if role == "in"} == {"conv1", "head"}
    assert {"bn0", "bn2"} <= {n for n, role in touched if role == "out"}


def test_depthwise_conv_follows_its_input(image):
    model = make("depthwise")
    touched = _touched(model, image, "expand.0", [1])
    assert touched[("dw.0", "out")] == [1] and touched[("project", "in")] == [1]
    assert "expand.0" in _groups(model, image)


def test_concat_gives_channel_offsets(image):
    model = make("concat")
    touched = _touched(model, image, "b", [0])
    assert touched[("c", "in")] == [4] and touched[("bn", "out")] == [4]
    # flatten of c's 2x2 output: each channel is 4 consecutive features of head
    assert _touched(model, image, "c", [0])[("head", "in")] == [0, 1, 2, 3]


def test_flatten_into_linear_strides_by_spatial_size(image):
    model = make("flatten_linear")
    assert _touched(model, image, "features.0", [0])[("classifier.1", "in")] == [0, 1, 2, 3]
    assert "classifier.1" in _groups(model, image)  # Linear neurons
    result = prune(model, image, PruneConfig(ratio=0.5, protect=[], round_to=1))
    assert result.skipped["classifier.3"] == "model output"


@pytest.mark.parametrize("name", sorted(COUPLING_MODELS))
def test_pruning_dead_channels_keeps_outputs(name, image):
    model = make(name)
    sizes = kill_channels(model, image)
    assert sizes, "the model has prunable groups"
    with torch.no_grad():
        expected = model(**image)
    result = prune(model, image, PruneConfig(ratio=0.5, round_to=1, protect=[]))
    pruned = result.module
    for group in result.groups:
        assert group.channels_after == group.channels_before - group.channels_before // 2
    with torch.no_grad():
        got = pruned(**image)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert result.params_after < result.params_before
    assert result.flops_after < result.flops_before


@pytest.mark.parametrize("name", sorted(COUPLING_MODELS))
def test_pruned_layers_have_consistent_shapes(name, image):
    pruned = prune(make(name), image, PruneConfig(ratio=0.5, round_to=2, protect=[])).module
    for module in pruned.modules():
        if isinstance(module, nn.Conv2d):
            assert module.weight.shape[0] == module.out_channels
            assert module.weight.shape[1] * module.groups == module.in_channels
        if isinstance(module, nn.Linear):
            assert tuple(module.weight.shape) == (module.out_features, module.in_features)
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean.shape[0] == module.num_features == module.weight.shape[0]
    # a plain dense module again: forward works on another batch size, no hooks or masks
    out = pruned(torch.randn(5, 3, 4, 4))
    assert out.shape[0] == 5
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in pruned.modules())
    assert not any("mask" in k or "orig" in k for k in pruned.state_dict())


def test_squeeze_excite_and_inverted_residual_prune_together():
    from nnship.models import mobilenet_small

    torch.manual_seed(0)
    model = mobilenet_small(width_mult=0.25, squeeze_excite=True).eval()
    x = {"x": torch.randn(1, 3, 16, 16)}
    result = prune(model, x, PruneConfig(ratio=0.5, round_to=4))
    # the SE gate multiplies the depthwise output: expand conv, depthwise and SE expand are one group
    merged = [g for g in result.groups if any(p.endswith("block.6.expand") for p in g.producers)]
    assert merged and all(len(g.producers) == 2 for g in merged)
    assert result.module(**x).shape == (1, 10)
    assert result.flops_ratio < 0.7


def test_transformer_mlp_hidden_neurons_are_pruned():
    from nnship.models import encoder_small

    torch.manual_seed(0)
    model = encoder_small(vocab_size=20, max_len=8, d_model=16, heads=2, layers=1, num_classes=3)
    inputs = {
        "input_ids": torch.randint(0, 20, (2, 8)),
        "attention_mask": torch.ones(2, 8, dtype=torch.long),
    }
    result = prune(model.eval(), inputs, PruneConfig(ratio=0.5, round_to=8))
    changed = [
        (g.name, g.channels_before, g.channels_after)
        for g in result.groups
        if g.channels_after < g.channels_before
    ]
    assert changed == [("layers.0.mlp.0", 64, 32)]
    assert result.module.layers[0].mlp[2].in_features == 32
    assert result.module(**inputs).shape == (2, 3)
    # attention projections hard-code their width in a view (heads x head_dim): pruning them
    # would break the forward pass, so they are left whole and the reason is recorded
    assert "breaks the forward pass" in result.skipped["layers.0.attention.query"]


class _GroupedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a, self.bn = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.g = nn.Conv2d(32, 32, 3, padding=1, groups=4)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.a(torch.relu(self.stem(x)))))
        return self.head(torch.relu(self.g(x)).mean((2, 3)))


def test_grouped_conv_loses_the_same_channels_in_every_group():
    """Torch-Pruning's planner removes the same positions from each of the 4 channel groups
    that `g` reads; arbitrary channels would leave groups of unequal width, which the pruned
    conv cannot express (its weights would read the wrong inputs)."""
    torch.manual_seed(0)
    model = _GroupedConv().eval()
    x = torch.randn(4, 3, 8, 8)
    config = PruneConfig(ratio=0.5, round_to=4, protect=["stem", "g"])
    pruned = prune(model, {"x": x[:1]}, config).module
    kept = [int((model.a.weight - w).abs().flatten(1).sum(1).argmin()) for w in pruned.a.weight]
    assert sorted({c % 8 for c in kept}) == sorted(c for c in kept if c < 8)
    assert [sum(1 for c in kept if c // 8 == k) for k in range(4)] == [4, 4, 4, 4]
    removed = torch.tensor(sorted(set(range(32)) - set(kept)))
    # the original with the removed channels switched off (ReLU of a large negative: 0)
    hook = model.bn.register_forward_hook(lambda mod, i, out: out.index_fill(1, removed, -1e4))
    with torch.no_grad():
        expected = model(x)
    hook.remove()
    torch.testing.assert_close(pruned(x), expected)
