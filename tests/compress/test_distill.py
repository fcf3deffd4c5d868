"""Distillation on the real digits: agreement recovers, seeds repeat, checkpoints resume."""

from __future__ import annotations

import importlib

import pytest
import torch

from nnship.compress import DistillConfig, PruneConfig, compress, distill, prune
from nnship.core.errors import CompressionError, DataError
from nnship.models import digits_cnn
from nnship.sources import ArrayData

# the package re-exports the function `distill`, which shadows the submodule's name
distill_module = importlib.import_module("nnship.compress.distill")


@pytest.fixture(scope="module")
def unlabeled(digits_splits):
    train, _ = digits_splits
    return ArrayData({"x": train.inputs["x"][:256]})


def _student(teacher, ratio=0.5):
    x = {"x": torch.zeros(1, 1, 8, 8)}
    return prune(teacher, x, PruneConfig(ratio=ratio, round_to=2, protect=[])).module


FAST = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "patience": None}  # small: on two shared cores


def test_distillation_wins_agreement_back(teacher, unlabeled):
    student = _student(teacher, 0.5)
    config = DistillConfig(**(FAST | {"epochs": 3, "val_fraction": 0.25}))
    result = distill(teacher, student, unlabeled, config)
    assert result.agreement_before is not None and result.agreement_after is not None
    assert result.agreement_after > result.agreement_before + 0.2
    assert len(result.history) == 3 and result.best_epoch in (1, 2, 3)
    assert result.student is student and not student.training


def test_same_seed_same_student(teacher, unlabeled):
    a = distill(
        teacher, _student(teacher), unlabeled, DistillConfig(**(FAST | {"epochs": 1}))
    ).student
    b = distill(
        teacher, _student(teacher), unlabeled, DistillConfig(**(FAST | {"epochs": 1}))
    ).student
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_checkpoint_resume_matches_an_uninterrupted_run(teacher, unlabeled, tmp_path, monkeypatch):
    straight = distill(teacher, _student(teacher), unlabeled, DistillConfig(**FAST)).student
    ckpt = tmp_path / "distill.ckpt"
    config = DistillConfig(**FAST, checkpoint=str(ckpt), resume=True)
    real_save = distill_module._save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(distill_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        distill(teacher, _student(teacher), unlabeled, config)
    monkeypatch.setattr(distill_module, "_save_checkpoint", real_save)
    resumed = distill(teacher, _student(teacher), unlabeled, config)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    for p, q in zip(straight.state_dict().values(), resumed.student.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_student_with_other_outputs_is_rejected(teacher, unlabeled):
    with pytest.raises(CompressionError, match=r"output 'output' has shape \(2, 5\)"):
        distill(teacher, digits_cnn(num_classes=5, width=4), unlabeled, DistillConfig(epochs=1))


def test_data_without_the_model_inputs(teacher):
    # One array under another name binds by position (see test_other_names_bind_by_position);
    # two arrays for a one-input forward cannot bind at all.
    zeros = torch.zeros(4, 1, 8, 8).numpy()
    data = ArrayData({"image": zeros, "mask": zeros})
    with pytest.raises(DataError, match=r"unexpected \['image', 'mask'\]"):
        distill(teacher, _student(teacher), data, DistillConfig(epochs=1))


def test_feature_matching_and_label_loss(teacher, digits_splits):
    train, _ = digits_splits
    labeled = ArrayData({"x": train.inputs["x"][:64]}, train.labels[:64])
    config = DistillConfig(epochs=1, label_weight=0.5, feature_layers=["features.4"], patience=None)
    result = distill(teacher, _student(teacher), labeled, config)
    assert result.history[0].train_loss > 0
    assert not any(m._forward_hooks for m in teacher.modules()), "hooks are removed"
    with pytest.raises(CompressionError, match="'nope' is not a layer of the teacher"):
        distill(teacher, _student(teacher), labeled, DistillConfig(feature_layers=["nope"]))


def test_sparse_student_keeps_its_zeros(teacher, unlabeled):
    x = {"x": torch.zeros(1, 1, 8, 8)}
    student = prune(teacher, x, PruneConfig(method="unstructured", ratio=0.7)).module
    zeros = {k: v == 0 for k, v in student.state_dict().items() if k.endswith("weight")}
    distill(teacher, student, unlabeled, DistillConfig(epochs=1), keep_zeros=True)
    after = student.state_dict()
    assert all((after[k][mask] == 0).all() for k, mask in zeros.items())


def test_iterative_schedule_reaches_the_ratio(teacher, unlabeled):
    x = {"x": torch.zeros(1, 1, 8, 8)}
    result = compress(
        teacher,
        x,
        PruneConfig(ratio=0.5, steps=2, round_to=1, protect=[]),
        DistillConfig(epochs=1, lr=3e-3, patience=None),
        data=unlabeled,
    )
    assert len(result.prune_steps) == len(result.distill_steps) == 2
    final = result.prune_steps[-1].groups
    assert sum(g.channels_after for g in final) == pytest.approx(
        0.5 * sum(g.channels_before for g in result.prune_steps[0].groups), abs=2
    )
    last = result.distill_steps[-1]
    assert last.agreement_after > last.agreement_before


def test_labels_report_teacher_and_student_accuracy(teacher, digits_splits):
    train, _ = digits_splits
    labeled = ArrayData({"x": train.inputs["x"][:128]}, train.labels[:128])
    config = DistillConfig(**(FAST | {"epochs": 2, "val_fraction": 0.25}))
    result = distill(teacher, _student(teacher), labeled, config)
    assert result.teacher_accuracy is not None and result.teacher_accuracy > 0.6
    assert result.accuracy_after is not None and result.accuracy_before is not None
    assert all(h.val_accuracy is not None for h in result.history)
    assert result.to_dict()["teacher_accuracy"] == result.teacher_accuracy
    # without labels there is nothing to measure accuracy against
    unlabeled = ArrayData({"x": train.inputs["x"][:128]})
    blind = distill(teacher, _student(teacher), unlabeled, DistillConfig(**(FAST | {"epochs": 1})))
    assert blind.teacher_accuracy is None and blind.history[0].val_accuracy is None
