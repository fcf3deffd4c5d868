"""The float PyTorch baseline as a `Runner`, and the output-naming convention shared with the
exporter (see docs/architecture.md, "Output naming")."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nnship.core import Batch, Runner, TensorSpec, example_batch
from nnship.core.errors import BackendError
from nnship.sources.binding import pass_by_keyword as _pass_by_keyword

log = logging.getLogger(__name__)


def flatten_outputs(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Name a model's outputs: a single tensor is "output", a tuple/list gives "output_0",
    "output_1", ..., a dict keeps its keys; nested containers join keys with "." (e.g.
    "output_0.1", "aux.logits"). `None` entries are dropped (the exporters drop them too);
    Python numbers become 0-d tensors. Order follows the container (dicts: insertion order),
    which is the order `torch.onnx.export` gives the ONNX outputs."""
    if isinstance(obj, torch.Tensor):
        return {prefix or "output": obj}
    if isinstance(obj, Mapping):
        out: dict[str, torch.Tensor] = {}
        for key, value in obj.items():
            out.update(flatten_outputs(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(obj, list | tuple):
        out = {}
        for i, value in enumerate(obj):
            out.update(flatten_outputs(value, f"{prefix}.{i}" if prefix else f"output_{i}"))
        return out
    if obj is None:
        return {}
    if isinstance(obj, bool | int | float):
        return {prefix or "output": torch.tensor(obj)}
    where = f" '{prefix}'" if prefix else ""
    raise BackendError(
        f"Model output{where} is a {type(obj).__name__}; outputs must be tensors or "
        "tuples/lists/dicts of tensors"
    )


def with_dynamic_batch(specs: Sequence[TensorSpec], name: str = "batch") -> list[TensorSpec]:
    """`specs` with axis 0 made symbolic (`name`), so any batch size is accepted."""
    return [TensorSpec(s.name, (name, *s.shape[1:]), s.dtype) if s.shape else s for s in specs]


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode for the block, restoring its training flag afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use `threads` intra-op threads for the block (torch's setting is process-wide)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchRunner(Runner):
    """Runs an `nn.Module` in eval mode under `torch.inference_mode` on numpy inputs: the float
    baseline every artifact is judged against.

    Inputs are passed to `forward` as keyword arguments named by `input_specs`. Outputs are
    named by `flatten_outputs`. With `dynamic_batch` (default True) axis 0 of every spec is
    made symbolic, since a module accepts any batch. `threads`: torch intra-op threads while
    running (None keeps torch's setting). `example_inputs` is used for the first run that
    discovers `output_names` (default: `nnship.core.example_batch(input_specs)`).
    The module is put in eval mode (and left so).
    """

    name = "torch"

    def __init__(
        self,
        module: nn.Module,
        input_specs: Sequence[TensorSpec],
        *,
        threads: int | None = None,
        dynamic_batch: bool = True,
        example_inputs: Batch | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise BackendError(f"TorchRunner: threads must be >= 1, got {threads}")
        self.module = module.eval()
        specs = list(input_specs)
        self._specs = with_dynamic_batch(specs) if dynamic_batch else specs
        self._threads = threads
        self._examples = example_inputs
        self._output_names: list[str] | None = None
        self._by_keyword = _pass_by_keyword(module, [spec.name for spec in specs])

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._specs)

    @property
    def output_names(self) -> list[str]:
        if self._output_names is None:
            examples = self._examples or example_batch(self._specs)
            self._run_impl(examples)
        assert self._output_names is not None
        return list(self._output_names)

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        tensors = {
            name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in batch.items()
        }
        with torch_threads(self._threads), torch.inference_mode():
            if self._by_keyword:
                outputs = flatten_outputs(self.module(**tensors))
            else:
                outputs = flatten_outputs(self.module(*(tensors[s.name] for s in self._specs)))
        if self._output_names is None:
            self._output_names = list(outputs)
        return {name: _to_numpy(t) for name, t in outputs.items()}


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: compare it as float32
        tensor = tensor.float()
    return tensor.numpy()
