"""Data and output plumbing shared by Taylor importance and distillation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnship.backends.torch_runner import flatten_outputs  # noqa: F401  (one naming rule, shared with export)
from nnship.compress.trace import forward_parameters
from nnship.core import DataSource
from nnship.core.errors import CompressionError, DataError
from nnship.sources.binding import pass_by_keyword


def check_data_inputs(module: nn.Module, names: list[str], *, what: str, data_desc: str) -> None:
    """Raise `DataError` if `names` (the data's arrays) do not cover the required arguments of
    `module.forward`, or hold arrays it does not take, unless they bind to its positional
    parameters by position (`nnship.sources.binding`: one `x` array for `forward(self, inputs)`)."""
    declared = getattr(module, "input_names", None)  # nnship.sources.pt2.ExportedModule
    if isinstance(declared, list) and declared:
        accepted, required = set(declared), list(declared)
    else:
        params = forward_parameters(module)
        if not params or any(p.kind == p.VAR_KEYWORD for p in params):
            return
        accepted = {p.name for p in params if p.kind != p.VAR_POSITIONAL}
        required = [
            p.name
            for p in params
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    missing = [n for n in required if n not in names]
    extra = [n for n in names if n not in accepted]
    if missing or extra:
        try:  # other names whose count fits forward's positional parameters bind by position
            if not pass_by_keyword(module, names):
                return
        except DataError:
            pass
    if missing or extra:
        raise DataError(
            f"Data {data_desc} does not match the {what}'s inputs: the {what} takes "
            f"{sorted(accepted)} (required {required}), the data holds {sorted(names)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )


def load_arrays(
    data: DataSource, *, max_samples: int | None = None, batch_size: int = 256
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Read (at most `max_samples` of) a data source into tensors, in order.

    Training shuffles across epochs, so the samples are held in memory; `max_samples` bounds it.
    """
    parts: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    count = 0
    for item in data.iter_batches(batch_size):
        take = len(next(iter(item.inputs.values())))
        if max_samples is not None:
            take = min(take, max_samples - count)
        for name, array in item.inputs.items():
            parts.setdefault(name, []).append(np.asarray(array)[:take])
        if item.labels is not None:
            labels.append(np.asarray(item.labels)[:take])
        count += take
        if max_samples is not None and count >= max_samples:
            break
    if count == 0:
        raise DataError(f"Data {data.describe()} is empty")
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(np.concatenate(v))) for k, v in parts.items()
    }
    label_tensor = None
    if labels and sum(len(x) for x in labels) == count:
        label_tensor = torch.from_numpy(np.concatenate(labels).astype(np.int64))
    return tensors, label_tensor


def check_same_outputs(teacher: dict[str, torch.Tensor], student: dict[str, torch.Tensor]) -> None:
    """Raise `CompressionError` naming the output if teacher and student outputs differ in
    names or shapes."""
    if list(teacher) != list(student):
        raise CompressionError(
            f"Student outputs {list(student)} do not match the teacher's {list(teacher)}"
        )
    for name, t in teacher.items():
        s = student[name]
        if tuple(t.shape) != tuple(s.shape):
            raise CompressionError(
                f"Student output '{name}' has shape {tuple(s.shape)}, the teacher's has "
                f"{tuple(t.shape)}: the student must solve the same task"
            )
