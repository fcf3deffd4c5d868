"""Which channels structured pruning removes: Torch-Pruning's own pruner, asked for a plan.

`ChannelPlanner` is Torch-Pruning's `BasePruner` (the `MetaPruner` of its README): it builds
the dependency graph, scores every group with an `Importance` object, ranks the scores per
group (`uniform`) or over all groups at once (`global`, `global_pruning=True`), gives the
groups of `layer_ratios` their own ratio (`pruning_ratio_dict`), leaves the ignored layers'
groups alone (`ignored_layers`), keeps channel-grouped convolutions consistent (the same
channels removed from every group of a grouped conv) and yields each group to cut with
`step(interactive=True)`. nnship keeps only what Torch-Pruning does not do the way the
backends need (`_round_to` below, each with the reason), and cuts the yielded groups itself
(`structured.apply_plan`: forward-checked, group by group when the whole plan breaks).

Each call plans one step on the model it is given. The iterative schedule (`schedule.py`) is
nnship's, not Torch-Pruning's `iterative_steps`: Torch-Pruning keeps a schedule's state in
the pruner object (the initial channel counts of every layer and scope, its graph of the
model), while nnship's steps are separate, cacheable runs, and a later step may start from a
saved `.pt2` in another process.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from nnship.compress.config import PruneConfig
from nnship.compress.structured import (
    ROOT_TYPES,
    PrunableGroup,
    example_for_tracing,
    graph_error,
    is_depthwise,
    round_kept,
)


def _overrides(model: nn.Module, layer_ratios: dict[str, float]) -> dict[nn.Module, float]:
    """`layer_ratios` (names or globs, first match wins) as Torch-Pruning's
    `pruning_ratio_dict`: one entry per Conv/Linear layer that produces channels (depthwise
    convs follow their input, as in `structured.prunable_groups`). Torch-Pruning gives a group
    the ratio of any such layer in it and ranks it in a scope of its own."""
    out: dict[nn.Module, float] = {}
    for name, module in model.named_modules():
        if not isinstance(module, ROOT_TYPES) or is_depthwise(module):
            continue
        for pattern, ratio in layer_ratios.items():
            if fnmatch.fnmatchcase(name, pattern):
                out[module] = ratio
                break
    return out


_TIE_BREAK = 1e-9
"""Largest offset the tie-break subtracts from a score (Torch-Pruning's importances are
normalized to mean 1, so it reorders only scores equal to about 1e-9)."""


class _PlanningImportance(tp.importance.Importance):
    """`criterion` as the planner asks it, with two additions Torch-Pruning does not make:

    - A group the criterion cannot score (`bn_scale` without a normalization layer) gets its
      group L2 norm; Torch-Pruning's pruner would leave it whole.
    - Equal scores are told apart, the lower channel index scoring higher (float64 scores
      minus 1e-9 x index / size). Torch-Pruning's global threshold removes every channel
      scoring at most the k-th smallest score, so ties cut past the ratio: an untrained
      network's BatchNorm scales are all 1, and `bn_scale` at global ratio 0.5 removed about
      90% of every group (each stopped only by `max_group_ratio`). With ties broken by
      relative position, flat scores are cut evenly and the ratio is met.
    """

    def __init__(self, criterion: tp.importance.Importance) -> None:
        self.criterion = criterion
        self.magnitude = tp.importance.GroupMagnitudeImportance(p=2)

    def __call__(self, group: Any) -> torch.Tensor:
        score = self.criterion(group)
        if score is None:
            score = self.magnitude(group)
        score = score.detach().double().cpu()
        return score - _TIE_BREAK * torch.arange(len(score), dtype=torch.float64) / len(score)


class ChannelPlanner(tp.pruner.BasePruner):
    """Torch-Pruning's pruner configured from a `PruneConfig`, for one step on `model`.

    `ignored` are the modules whose output channels stay whole (Torch-Pruning ignores their
    submodules too); `importance` a Torch-Pruning `Importance` (for `taylor`, the gradients
    must be in the parameters' `.grad` when `plan()` runs). Building it traces `model` once
    (the graph is `self.DG`); `plan()` changes nothing in the model.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        config: PruneConfig,
        ignored: list[nn.Module],
        importance: tp.importance.Importance,
    ) -> None:
        global_scope = config.scope == "global"
        try:
            # warnings.catch_warnings: what `verbose=False` silences in `build_graph` (the
            # pruner builds its graph verbosely)
            with torch.enable_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=r"torch_pruning\.")
                super().__init__(
                    model,
                    example_for_tracing(model, inputs),
                    importance=_PlanningImportance(importance),
                    global_pruning=global_scope,
                    pruning_ratio=config.ratio,
                    pruning_ratio_dict=_overrides(model, config.layer_ratios),
                    # Torch-Pruning applies it to the overrides' ratios and, across its own
                    # iterative steps, to groups already cut past it; the cap within this
                    # step is `_round_to`'s. Uniform scope has no cap (as before).
                    max_pruning_ratio=config.max_group_ratio if global_scope else 1.0,
                    ignored_layers=ignored,
                    round_to=config.round_to,
                    root_module_types=list(ROOT_TYPES),
                    # fresh dicts: Torch-Pruning's defaults are shared mutable arguments that
                    # it fills with the model's modules (they would outlive this pruner)
                    in_channel_groups={},
                    out_channel_groups={},
                    num_heads={},
                    channel_groups={},
                )
        except Exception as exc:
            raise graph_error(model, exc) from exc
        self.max_group_ratio = config.max_group_ratio

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        """Channels to remove from a group of `current_channels` that Torch-Pruning's ranking
        would remove `n_pruned` of (Torch-Pruning calls it once per group it cuts, and then
        removes that many of the lowest-scoring channels). Its `n_pruned` keeps
        int(size x (1 - ratio)) channels of a group: the kept count before rounding is
        floored (with `round_to = 1` a group of 64 at ratio 0.3 keeps 44, int(44.8); nnship's
        own plan rounded to 45 before).

        Two rules of nnship replace Torch-Pruning's own here:
        - Rounding. Torch-Pruning rounds the kept count *down* to a multiple of `round_to`,
          to zero for a group smaller than it (its docstring promises the nearest multiple;
          the zero case was Torch-Pruning issue #49). nnship rounds to the nearest multiple,
          never below `round_to`, and keeps groups of at most `round_to` whole (`round_kept`).
        - Global scope. Torch-Pruning's global threshold has no per-group limit within one
          step (`max_pruning_ratio` only skips groups that earlier steps already cut past it),
          so one low-scoring group can lose every channel and collapse the layer; nnship
          removes at most `max_group_ratio` of a group.

        A channel-grouped convolution's group (groups > 1, not depthwise) arrives with its
        count per channel group but the layer's total channel count (Torch-Pruning's own
        rounding has the same mismatch); rounded here it is usually kept whole: safe, but
        such groups are pruned only with `round_to` small enough (4 for 4 groups of 8).
        """
        if self.global_pruning:
            n_pruned = min(n_pruned, math.floor(current_channels * self.max_group_ratio))
        kept = round_kept(current_channels, current_channels - n_pruned, round_to)
        return current_channels - kept

    def plan(self, groups: list[PrunableGroup]) -> dict[str, list[int]]:
        """Output channels to remove per group name (of `groups`: the prunable groups of the
        same model), as Torch-Pruning's ranking picks them; groups left whole are absent."""
        names = {module: name for name, module in self.model.named_modules()}
        wanted = {g.name for g in groups}
        removals: dict[str, list[int]] = {}
        for tp_group in self.step(interactive=True):
            for dep, idxs in tp_group:
                name = names.get(dep.target.module)
                if name in wanted and self.DG.is_out_channel_pruning_fn(dep.handler):
                    if idxs:
                        removals[name] = sorted(int(i) for i in idxs)
                    break
        return removals
