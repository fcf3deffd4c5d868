"""Each coupling kind: the groups found, and an exact prune of dead channels."""

from __future__ import annotations

import pytest
import torch
from compress_models import COUPLING_MODELS, kill_channels, make
from torch import nn

from nnship.compress import PruneConfig, prune
from nnship.compress.analysis import analyse


def _groups(model, inputs):
    return {g.name: g for g in analyse(model, inputs).groups if g.producers}


def test_residual_add_couples_every_branch(image):
    groups = _groups(make("residual"), image)
    stream = groups["conv0"]
    assert stream.producers == ["conv0", "conv2"]
    readers = {s.module for s in stream.slots if s.kind == "consumer"}
    assert readers == {"conv1", "head"}
    assert {s.module for s in stream.slots if s.kind == "norm"} == {"bn0", "bn2"}


def test_depthwise_conv_follows_its_input(image):
    groups = _groups(make("depthwise"), image)
    hidden = groups["expand.0"]
    kinds = {(s.module, s.kind) for s in hidden.slots}
    assert ("dw.0", "depthwise") in kinds and ("project", "consumer") in kinds
    assert hidden.prunable


def test_concat_gives_channel_offsets(image):
    groups = _groups(make("concat"), image)
    b_reads = [s for s in groups["b"].slots if s.module == "c"]
    assert [(s.start, s.stride) for s in b_reads] == [(4, 1)]
    b_norm = [s for s in groups["b"].slots if s.module == "bn"]
    assert [s.start for s in b_norm] == [4]
    # flatten of c's 2x2 output: each channel is 4 consecutive features of head
    head = [s for s in groups["c"].slots if s.module == "head"]
    assert [(s.start, s.stride) for s in head] == [(0, 4)]


def test_flatten_into_linear_strides_by_spatial_size(image):
    groups = _groups(make("flatten_linear"), image)
    [read] = [s for s in groups["features.0"].slots if s.module == "classifier.1"]
    assert (read.start, read.stride) == (0, 4)
    assert groups["classifier.1"].prunable  # Linear neurons
    assert groups["classifier.3"].blocked == "model output"


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
    assert [(g.name, g.channels_before, g.channels_after) for g in result.groups] == [
        ("layers.0.mlp.0", 64, 32)
    ]
    assert result.module.layers[0].mlp[2].in_features == 32
    assert result.module(**inputs).shape == (2, 3)
    assert "<whole model>" in result.skipped  # why only submodules were analysed
