"""The one prune -> distill schedule (`compress`): phases kept in and reused from a store,
results as JSON and back, and the same pruning as `prune()` for one step."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from nnship.compress import CompressResult, DistillConfig, PruneConfig, compress, prune
from nnship.compress.schedule import plan_phases
from nnship.sources import ArrayData

X = {"x": torch.zeros(1, 1, 8, 8)}
PRUNE = PruneConfig(ratio=0.5, steps=2, round_to=1, protect=[])
DISTILL = DistillConfig(epochs=1, lr=3e-3, patience=None)


@pytest.fixture(scope="module")
def unlabeled(digits_splits):
    train, _ = digits_splits
    return ArrayData({"x": train.inputs["x"][:96]})


class MemoryStore:
    """A `PhaseStore` in memory that records what the schedule asked of it."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[torch.nn.Module, dict]] = {}
        self.calls: list[tuple[str, str]] = []

    def lookup(self, phase):
        entry = self.entries.get(phase.name)
        return None if entry is None else entry[1]

    def load(self, phase):
        self.calls.append(("load", phase.name))
        return copy.deepcopy(self.entries[phase.name][0])

    def keep(self, phase, module, summary):
        self.calls.append(("keep", phase.name))
        self.entries[phase.name] = (copy.deepcopy(module), _json(summary))


def _json(summary):
    return json.loads(json.dumps(summary))


def _weights(module):
    return [p.detach().clone() for p in module.state_dict().values()]


def test_phases_alternate_and_two_four_is_one_step():
    phases = plan_phases(PRUNE, DISTILL)
    assert [p.name for p in phases] == ["prune 1/2", "distill 1/2", "prune 2/2", "distill 2/2"]
    assert [round(p.config.ratio, 4) for p in phases if p.kind == "prune"] == [0.25, 0.3333]
    one = plan_phases(PruneConfig(method="2:4", steps=3), DISTILL)
    assert [(p.name, p.keep_zeros) for p in one] == [("prune", False), ("distill", True)]
    assert plan_phases(PruneConfig(), None)[0].config == PruneConfig()  # one step: as given


def test_a_store_keeps_every_phase_and_hands_them_back(teacher, unlabeled):
    store = MemoryStore()
    first = compress(teacher, X, PRUNE, DISTILL, data=unlabeled, store=store)
    names = ["prune 1/2", "distill 1/2", "prune 2/2", "distill 2/2"]
    assert store.calls == [("keep", n) for n in names] and first.reused == ()
    store.calls.clear()
    again = compress(teacher, X, PRUNE, DISTILL, data=unlabeled, store=store)
    assert store.calls == [("load", n) for n in names] and again.reused == tuple(names)
    assert _json({**again.to_dict(), "reused": []}) == _json(first.to_dict())


def test_only_a_missing_last_distillation_runs_alone(teacher, unlabeled):
    store = MemoryStore()
    compress(teacher, X, PRUNE, DISTILL, data=unlabeled, store=store)
    del store.entries["distill 2/2"]
    store.calls.clear()
    compress(teacher, X, PRUNE, DISTILL, data=unlabeled, store=store)
    assert store.calls == [
        ("load", "prune 1/2"),
        ("load", "distill 1/2"),
        ("load", "prune 2/2"),
        ("keep", "distill 2/2"),
    ]
    # a missing middle phase: a stored (exported) module cannot be pruned again, so the
    # whole schedule runs in memory
    del store.entries["distill 1/2"]
    store.calls.clear()
    compress(teacher, X, PRUNE, DISTILL, data=unlabeled, store=store)
    assert [call for call, _ in store.calls] == ["keep"] * 4


def test_result_round_trips_through_json(teacher, unlabeled):
    result = compress(teacher, X, PRUNE, DISTILL, data=unlabeled)
    data = _json(result.to_dict())
    again = CompressResult.from_dict(data, result.module)
    assert _json(again.to_dict()) == data
    whole = again.pruned()
    assert whole is not None and whole.config == PRUNE
    assert whole.params_before == result.prune_steps[0].params_before
    assert whole.params_after == result.prune_steps[-1].params_after


def test_one_taylor_step_is_prune(teacher, unlabeled):
    """The first step scores the model itself (its own top-1 on unlabelled data), as
    `prune()` does: a KL to the teacher it still equals would have no gradient."""
    config = PruneConfig(ratio=0.5, round_to=1, protect=[], importance="taylor")
    alone = prune(teacher, X, config, data=unlabeled)
    scheduled = compress(teacher, X, config, None, data=unlabeled)
    assert scheduled.pruned() is scheduled.prune_steps[0]
    for a, b in zip(_weights(alone.module), _weights(scheduled.module)):
        torch.testing.assert_close(a, b)


def test_distilling_alone_trains_a_copy_not_the_teacher(teacher, unlabeled):
    before = _weights(teacher)
    result = compress(teacher, X, None, DISTILL, data=unlabeled)
    assert result.module is not teacher and len(result.distill_steps) == 1
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(teacher)))
