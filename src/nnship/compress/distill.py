"""`distill()`: train a (pruned) student to reproduce a float teacher, on unlabeled data too.

Loss (Hinton et al. 2015): kd_weight * T^2 * KL(softmax(teacher/T) || softmax(student/T))
+ label_weight * CE(student, labels) + feature_weight * MSE(proj(student_feat), teacher_feat)
(FitNets, Romero et al. 2015). Validation split, early stopping on the validation loss with the
best weights restored, cosine/one-cycle/constant schedule, fixed seeds, checkpoint and resume.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nnship.compress._data import (
    check_data_inputs,
    check_same_outputs,
    flatten_outputs,
    load_arrays,
)
from nnship.compress._features import FeatureMatcher
from nnship.compress.augment import augment_batch, augmentable
from nnship.compress.config import DistillConfig
from nnship.compress.recalibrate import batchnorm_layers, recalibrate_on_tensors
from nnship.core import DataSource
from nnship.core.errors import CompressionError
from nnship.core.fileio import atomic_path
from nnship.core.progress import status_progress
from nnship.sources.binding import call_module

log = logging.getLogger(__name__)
Tensors = dict[str, torch.Tensor]
_AUTO_AUGMENT_BELOW = 10_000
_AUTO_AUGMENT_MIN_STEPS = 100
"""`augment = None` turns augmentation on below 10,000 training samples when the run has at
least 100 optimizer steps: augmented views are harder targets that pay off over long
schedules (Beyer et al. 2022); on EfficientNet-Lite0 with 64 crops and 6 steps they lowered
the agreement reached (13% against 32% without)."""


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_agreement: float | None
    """Top-1 agreement with the teacher on the validation split (0..1); None if not a classifier."""
    lr: float
    val_accuracy: float | None = None
    """Top-1 accuracy against the labels on the validation split (0..1); None without labels."""


@dataclass
class DistillResult:
    """The trained student (best validation epoch) and its training history."""

    student: nn.Module
    config: DistillConfig
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    resumed_from_epoch: int | None = None
    agreement_before: float | None = None
    """Student/teacher top-1 agreement on the validation split before training (0..1)."""
    agreement_after: float | None = None
    teacher_accuracy: float | None = None
    """The teacher's top-1 accuracy on the validation split's labels (0..1): the ceiling the
    student is measured against; None without labels."""
    accuracy_before: float | None = None
    """The student's top-1 accuracy on the validation labels before / after training (0..1)."""
    accuracy_after: float | None = None
    augmented: bool = False
    """Whether image-like inputs were augmented (crops, flips, mixup) while training."""
    epochs: int = 0
    """Epochs planned (`config.epochs`, raised to reach `config.min_steps`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(),
            "history": [asdict(h) for h in self.history],
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "resumed_from_epoch": self.resumed_from_epoch,
            "agreement_before": self.agreement_before,
            "agreement_after": self.agreement_after,
            "teacher_accuracy": self.teacher_accuracy,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "augmented": self.augmented,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], student: nn.Module) -> DistillResult:
        """The result `to_dict()` summarised (after a JSON round trip too), around `student`
        (the trained module, which the summary does not hold)."""
        return cls(
            student=student,
            config=DistillConfig.model_validate(data["config"]),
            history=[EpochStats(**h) for h in data.get("history", [])],
            best_epoch=int(data.get("best_epoch", 0)),
            stopped_early=bool(data.get("stopped_early", False)),
            resumed_from_epoch=data.get("resumed_from_epoch"),
            agreement_before=data.get("agreement_before"),
            agreement_after=data.get("agreement_after"),
            teacher_accuracy=data.get("teacher_accuracy"),
            accuracy_before=data.get("accuracy_before"),
            accuracy_after=data.get("accuracy_after"),
            augmented=bool(data.get("augmented", False)),
            epochs=int(data.get("epochs", 0)),
        )


def _set_train(module: nn.Module, mode: bool) -> None:
    try:
        module.train(mode)
    except NotImplementedError:  # torch.export programs: BatchNorm/dropout stay in eval form
        pass


def _output_loss(s: torch.Tensor, t: torch.Tensor, config: DistillConfig) -> torch.Tensor:
    if config.output_loss == "mse" or not s.is_floating_point() or s.ndim == 0:
        return F.mse_loss(s, t)
    s2 = s.reshape(-1, s.shape[-1]) / config.temperature
    t2 = t.reshape(-1, t.shape[-1]) / config.temperature
    kl = F.kl_div(
        F.log_softmax(s2, -1), F.log_softmax(t2, -1), reduction="batchmean", log_target=True
    )
    return kl * config.temperature**2


def _loss(
    student_out: Tensors, teacher_out: Tensors, labels: torch.Tensor | None, config: DistillConfig
) -> torch.Tensor:
    loss = torch.zeros(())
    if config.kd_weight:
        for name, t in teacher_out.items():
            loss = loss + config.kd_weight * _output_loss(student_out[name], t, config)
    if labels is not None and config.label_weight:
        loss = loss + config.label_weight * F.cross_entropy(
            next(iter(student_out.values())), labels
        )
    return loss


def _agreement(student_out: Tensors, teacher_out: Tensors) -> tuple[int, int] | None:
    s, t = next(iter(student_out.values())), next(iter(teacher_out.values()))
    if s.ndim != 2 or s.shape[1] < 2:
        return None
    return int((s.argmax(-1) == t.argmax(-1)).sum()), len(s)


def _accuracy(outputs: Tensors, labels: torch.Tensor | None) -> float | None:
    """Top-1 accuracy (0..1) of the first output against `labels`; None if not applicable."""
    logits = next(iter(outputs.values()), None) if outputs else None
    if labels is None or logits is None or logits.ndim != 2 or len(labels) != len(logits):
        return None
    return float((logits.argmax(-1) == labels).float().mean())


def _batches(tensors: Tensors, index: torch.Tensor, size: int):
    for start in range(0, len(index), size):
        idx = index[start : start + size]
        yield idx, {k: v[idx] for k, v in tensors.items()}


@torch.no_grad()
def _teacher_outputs(teacher: nn.Module, inputs: Tensors, batch_size: int) -> Tensors:
    n = len(next(iter(inputs.values())))
    parts: dict[str, list[torch.Tensor]] = {}
    for _, batch in _batches(inputs, torch.arange(n), batch_size):
        for k, v in flatten_outputs(call_module(teacher, batch)).items():
            parts.setdefault(k, []).append(v.detach())
    return {k: torch.cat(v) for k, v in parts.items()}


@torch.no_grad()
def _evaluate(
    student, inputs, teacher_out, labels, config, use_labels: bool
) -> tuple[float, float | None, float | None]:
    """(loss, top-1 agreement with the teacher, top-1 accuracy on `labels`) on a split; the loss
    includes the label term only when `use_labels`."""
    _set_train(student, False)
    n = len(next(iter(inputs.values())))
    total, agree, count, correct, scored = 0.0, 0, 0, 0.0, 0
    for idx, batch in _batches(inputs, torch.arange(n), config.batch_size):
        out = flatten_outputs(call_module(student, batch))
        t_out = {k: v[idx] for k, v in teacher_out.items()}
        batch_labels = None if labels is None else labels[idx]
        loss = _loss(out, t_out, batch_labels if use_labels else None, config)
        total += float(loss) * len(idx)
        hit = _agreement(out, t_out)
        if hit is not None:
            agree, count = agree + hit[0], count + hit[1]
        acc = _accuracy(out, batch_labels)
        if acc is not None:
            correct, scored = correct + acc * len(idx), scored + len(idx)
    return total / n, (agree / count if count else None), (correct / scored if scored else None)


def _split(n: int, config: DistillConfig, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    n_val = int(round(n * config.val_fraction))
    if config.val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return order[n_val:], order[:n_val]


def _schedule(optimizer: torch.optim.Optimizer, config: DistillConfig, steps: int):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=max(steps, 1)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: DataSource,
    config: DistillConfig | None = None,
    *,
    val_data: DataSource | None = None,
    keep_zeros: bool = False,
    on_epoch: Callable[[EpochStats, DistillResult], None] | None = None,
) -> DistillResult:
    """Train `student` (in place) to match `teacher` on `data`; returns the best-validation
    student. Labels in `data` enter the loss when `config.label_weight > 0` (default 0.5) and
    always measure the teacher's and the student's validation accuracy.

    `val_data`: validation set (default: `config.val_fraction` of `data`, seeded split).
    `keep_zeros`: weights that are exactly zero before training stay zero (fine-tuning an
    unstructured or 2:4 sparse student without losing its sparsity).
    `on_epoch(stats, result)` is called after each epoch (its validation figures in `stats`);
    it may raise to abandon the run (the tuner stops hopeless trials this way).
    Raises `DataError` if the data lacks the models' inputs, `CompressionError` if the student's
    outputs do not match the teacher's.
    """
    config = config or DistillConfig()
    for what, model in (("teacher", teacher), ("student", student)):
        check_data_inputs(model, data.input_names, what=what, data_desc=data.describe())
        if val_data is not None:
            check_data_inputs(model, val_data.input_names, what=what, data_desc=val_data.describe())
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    inputs, labels = load_arrays(data, max_samples=config.max_samples)
    n = len(next(iter(inputs.values())))
    if val_data is not None:
        train_idx = torch.arange(n)
        val_inputs, val_labels = load_arrays(val_data)
    else:
        train_idx, val_idx = _split(n, config, generator)
        val_inputs = {k: v[val_idx] for k, v in inputs.items()}
        val_labels = None if labels is None else labels[val_idx]
    # Labels always measure accuracy (teacher and student); they enter the loss only with
    # label_weight > 0.
    use_labels = labels is not None and config.label_weight > 0
    teacher.eval()
    probe = {k: v[:2] for k, v in inputs.items()}
    _set_train(student, False)
    with torch.no_grad():
        check_same_outputs(
            flatten_outputs(call_module(teacher, probe)),
            flatten_outputs(call_module(student, probe)),
        )
    matcher = (
        FeatureMatcher(teacher, student, config.feature_layers, probe)
        if config.feature_layers
        else None
    )
    train_inputs = {k: v[train_idx] for k, v in inputs.items()}
    steps_per_epoch = (len(train_idx) + config.batch_size - 1) // config.batch_size
    epochs = max(config.epochs, -(-config.min_steps // max(steps_per_epoch, 1)))
    augment = (
        config.augment
        if config.augment is not None
        else bool(augmentable(probe))
        and len(train_idx) < _AUTO_AUGMENT_BELOW
        and epochs * steps_per_epoch >= _AUTO_AUGMENT_MIN_STEPS
    )
    # Augmented batches are new images: the teacher labels each one as it is drawn.
    teacher_train = {} if augment else _teacher_outputs(teacher, inputs, config.batch_size)
    recalibrate = config.recalibrate_bn and bool(batchnorm_layers(student))
    has_val = len(next(iter(val_inputs.values()))) > 0
    teacher_val = _teacher_outputs(teacher, val_inputs, config.batch_size) if has_val else {}

    params = list(student.parameters()) + (matcher.parameters() if matcher else [])
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = _schedule(optimizer, config, epochs * steps_per_epoch)
    masks = {p: p.detach() != 0 for p in student.parameters()} if keep_zeros else {}

    result = DistillResult(student=student, config=config, augmented=augment, epochs=epochs)
    if has_val:
        result.teacher_accuracy = _accuracy(teacher_val, val_labels)
        _, result.agreement_before, result.accuracy_before = _evaluate(
            student, val_inputs, teacher_val, val_labels, config, use_labels
        )
    state: dict[str, Any] = {
        "epoch": 0,
        "best_loss": float("inf"),
        "best_state": None,
        "bad_epochs": 0,
    }
    ckpt = Path(config.checkpoint) if config.checkpoint else None
    if ckpt is not None and config.resume and ckpt.is_file():
        state = _load_checkpoint(ckpt, student, matcher, optimizer, scheduler, generator, result)

    with status_progress("distill") as progress:
        task = progress.add_task("distill", total=epochs * steps_per_epoch, info="")
        progress.advance(task, state["epoch"] * steps_per_epoch)
        for epoch in range(state["epoch"], epochs):
            _set_train(student, True)
            order = train_idx[torch.randperm(len(train_idx), generator=generator)]
            total = 0.0
            for idx, batch in _batches(inputs, order, config.batch_size):
                batch_labels = labels[idx] if use_labels and labels is not None else None
                mix = None
                if augment:
                    batch, _, mix = augment_batch(batch, batch_labels, config, generator)
                    with torch.no_grad():
                        t_out = flatten_outputs(call_module(teacher, batch))
                else:
                    t_out = {k: v[idx] for k, v in teacher_train.items()}
                out = flatten_outputs(call_module(student, batch))
                loss = _loss(out, t_out, None if mix else batch_labels, config)
                if mix is not None and batch_labels is not None:
                    # mixup's label loss: the same convex combination of the two labels' losses
                    perm, lam = mix
                    logits = next(iter(out.values()))
                    loss = loss + config.label_weight * (
                        lam * F.cross_entropy(logits, batch_labels)
                        + (1 - lam) * F.cross_entropy(logits, batch_labels[perm])
                    )
                if matcher is not None:
                    loss = loss + config.feature_weight * matcher.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if masks:
                    with torch.no_grad():
                        for p, m in masks.items():
                            p.mul_(m)
                total += float(loss.detach()) * len(idx)
                progress.update(task, advance=1, info=f"loss {float(loss.detach()):.4f}")
            lr = optimizer.param_groups[0]["lr"]
            train_loss = total / max(len(train_idx), 1)
            if recalibrate:  # statistics of the clean images, not of the augmented ones
                recalibrate_on_tensors(student, train_inputs, batch_size=config.batch_size)
            if has_val:
                val_loss, agree, acc = _evaluate(
                    student, val_inputs, teacher_val, val_labels, config, use_labels
                )
            else:
                val_loss, agree, acc = train_loss, None, None
            result.history.append(EpochStats(epoch + 1, train_loss, val_loss, agree, lr, acc))
            info = f"loss {train_loss:.4f} val {val_loss:.4f}"
            progress.update(task, info=info + (f" agree {agree:.1%}" if agree is not None else ""))
            log.debug("distill epoch %d: %s", epoch + 1, info)
            if on_epoch is not None:
                on_epoch(result.history[-1], result)
            if val_loss < state["best_loss"]:
                state.update(best_loss=val_loss, best_epoch=epoch + 1, bad_epochs=0)
                state["best_state"] = copy.deepcopy(student.state_dict())
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            if ckpt is not None:
                _save_checkpoint(
                    ckpt, state, student, matcher, optimizer, scheduler, generator, result
                )
            if config.patience is not None and state["bad_epochs"] >= config.patience:
                result.stopped_early = epoch + 1 < epochs
                break
    if state["best_state"] is not None:
        student.load_state_dict(state["best_state"])
    result.best_epoch = int(state.get("best_epoch", state["epoch"]))
    if has_val:
        _, result.agreement_after, result.accuracy_after = _evaluate(
            student, val_inputs, teacher_val, val_labels, config, use_labels
        )
    if matcher is not None:
        matcher.close()
    _set_train(student, False)
    return result


def _save_checkpoint(
    path, state, student, matcher, optimizer, scheduler, generator, result
) -> None:
    payload = {
        "format": "nnship.distill.v1",
        "state": {k: v for k, v in state.items() if k != "best_state"},
        "best_state": state["best_state"],
        "student": student.state_dict(),
        "matcher": matcher.state_dict() if matcher else None,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "history": [asdict(h) for h in result.history],
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path, student, matcher, optimizer, scheduler, generator, result) -> dict:
    try:
        payload = torch.load(path, weights_only=True)  # never unpickles code
        student.load_state_dict(payload["student"])
        if matcher is not None and payload["matcher"] is not None:
            matcher.load_state_dict(payload["matcher"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        generator.set_state(payload["generator"])
    except Exception as exc:
        raise CompressionError(
            f"Cannot resume from checkpoint '{path}' ({type(exc).__name__}: {exc}); it belongs "
            "to another student or run: delete it or set resume = false"
        ) from exc
    result.history = [EpochStats(**h) for h in payload["history"]]
    result.resumed_from_epoch = int(payload["state"]["epoch"])
    state = dict(payload["state"])
    state["best_state"] = payload["best_state"]
    log.info("resumed distillation from '%s' after epoch %d", path, state["epoch"])
    return state
