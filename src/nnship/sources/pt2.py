"""`torch.export` programs (`.pt2`): write one with a dynamic batch axis, read one back as a
module plus input specs and example inputs."""

from __future__ import annotations

import inspect
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnship.core import Batch, TensorSpec, example_batch
from nnship.core.errors import ExportError, ModelSourceError
from nnship.core.fileio import atomic_path

log = logging.getLogger(__name__)

_META_FILE = "nnship.json"
"""Extra file inside the .pt2 archive recording the input names and calling convention."""

_PICKLED_PREFIXES = ("custom_obj_", "opaque_obj_")
"""Constant file prefixes `torch.export.load` reads with pickle (see torch/export/pt2_archive)."""


class ExportedModule(nn.Module):
    """An exported program's graph module, callable by position or by input name.

    `ExportedProgram.module()` refuses `.eval()`/`.train()` (the mode was fixed at export time)
    and accepts inputs only in the convention it was exported with; this wrapper makes both
    harmless, so every stage can treat it like any eval-mode `nn.Module`.
    """

    def __init__(self, graph_module: nn.Module, input_names: list[str], by_keyword: bool) -> None:
        super().__init__()
        self.graph_module = graph_module
        self.input_names = list(input_names)
        self.by_keyword = by_keyword
        self.training = False

    def train(self, mode: bool = True) -> ExportedModule:
        # Do not recurse: the graph module raises on train()/eval(); its mode is baked in.
        self.training = mode
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self.input_names):
            raise TypeError(f"expected at most {len(self.input_names)} inputs, got {len(args)}")
        named = dict(zip(self.input_names, args))
        named.update(kwargs)
        if self.by_keyword:
            return self.graph_module(**named)
        return self.graph_module(*(named[n] for n in self.input_names))


def _forward_params(module: nn.Module) -> list[str]:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds]


def _star_dims(module: nn.Module, per_input: list[dict]) -> dict[str, Any] | None:
    """`dynamic_shapes` by parameter name when `forward` takes `*args`: torch.export matches
    them to forward's signature, so the inputs `*args` collects need one nested tuple under
    its name. None when forward has no `*args`."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p.name for p in params if p.kind in kinds]
    star = next((p.name for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL), None)
    if star is None:
        return None
    dims: dict[str, Any] = dict(zip(named, per_input))
    dims[star] = tuple(per_input[len(named) :])
    return dims


def _export(module: nn.Module, tensors: dict[str, torch.Tensor], by_keyword: bool, dynamic: bool):
    dims: Any = None
    if dynamic:
        batch = torch.export.Dim("batch", min=1)
        per_input = [{0: batch} for _ in tensors]
        dims = dict(zip(tensors, per_input)) if by_keyword else tuple(per_input)
        if not by_keyword:
            dims = _star_dims(module, per_input) or dims
    if by_keyword:
        return torch.export.export(module, (), kwargs=tensors, dynamic_shapes=dims)
    return torch.export.export(module, tuple(tensors.values()), dynamic_shapes=dims)


def save_pt2(
    module: nn.Module, example_inputs: Batch, path: Path | str, *, dynamic_batch: bool = True
) -> Path:
    """Export `module` with `torch.export` and write it to `path` (a `.pt2`) atomically.

    Inputs are passed by name when every name in `example_inputs` is a parameter of
    `forward`, otherwise by position in the batch's order. With `dynamic_batch` (the default)
    axis 0 of every input is one shared dynamic dim named "batch"; an example batch of 1 is
    repeated to 2 for tracing (torch.export specialises sizes 0 and 1). If the model cannot
    be exported with a dynamic batch, it is exported with static shapes and a warning is logged.
    The module is put in eval mode. Returns `path`.
    """
    if not example_inputs:
        raise ExportError("save_pt2 needs at least one example input")
    module.eval()
    names = list(example_inputs)
    by_keyword = set(names) <= set(_forward_params(module))
    if isinstance(module, ExportedModule) and set(names) == set(module.input_names):
        # Re-saving a loaded program (e.g. a distilled .pt2 student): export its graph module
        # with the program's own calling convention; the wrapper's forward(*args, **kwargs)
        # would hide the input names from torch.export.
        names, by_keyword = list(module.input_names), module.by_keyword
        example_inputs = {n: example_inputs[n] for n in names}
        module = module.graph_module
    arrays = {n: np.ascontiguousarray(a) for n, a in example_inputs.items()}
    sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
    dynamic = dynamic_batch and len(sizes) == 1 and None not in sizes
    if dynamic_batch and not dynamic:
        log.warning("Inputs do not share a batch axis; exporting %s with static shapes", names)
    if dynamic and sizes == {1}:
        arrays = {n: np.concatenate([a, a]) for n, a in arrays.items()}
    tensors = {n: torch.from_numpy(a) for n, a in arrays.items()}
    program = None
    with torch.no_grad():
        if dynamic:
            try:
                program = _export(module, tensors, by_keyword, dynamic=True)
            except Exception as exc:  # any tracing failure: static export still gives a program
                log.warning(
                    "torch.export with a dynamic batch axis failed for %s (%s: %s); "
                    "exporting with static shapes",
                    type(module).__name__,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
                dynamic = False
                tensors = {
                    n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in example_inputs.items()
                }
        if program is None:
            try:
                program = _export(module, tensors, by_keyword, dynamic=False)
            except Exception as exc:
                raise ExportError(
                    f"torch.export failed for {type(module).__name__}: {type(exc).__name__}: {exc}"
                ) from exc
    meta = {"input_names": names, "by_keyword": by_keyword, "dynamic_batch": dynamic}
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.export.save(program, handle, extra_files={_META_FILE: json.dumps(meta)})
    return path


def _torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _calling_convention(program: Any) -> tuple[list[str], bool]:
    """Input names and whether they are passed by keyword, from the program's call spec."""
    names = list(program.graph_signature.user_inputs)
    try:
        args_spec, kwargs_spec = program.call_spec.in_spec.children()
        keywords = list(kwargs_spec.context or [])
        if keywords and args_spec.num_children == 0:
            return keywords, True
    except (AttributeError, ValueError):  # older/newer pytree layouts: fall back to positions
        pass
    return names, False


def _safe_torch_payload(data: bytes) -> bool:
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return True
    except Exception:  # anything weights_only refuses (or cannot read) needs full unpickling
        return False


def pickled_members(path: Path) -> list[str]:
    """Members of a `.pt2` archive that `torch.export.load` would unpickle with arbitrary code.

    `torch.export.load` unpickles tensor-subclass weights/constants (`use_pickle`), opaque and
    custom objects, and falls back to `weights_only=False` for sample inputs and legacy weight
    files it cannot read safely; this scan finds those members without running them.
    """
    found: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                if member.endswith("_config.json") and ("weights" in parts or "constants" in parts):
                    config = json.loads(archive.read(member)).get("config", {})
                    for name, entry in config.items():
                        file_name = str(entry.get("path_name", ""))
                        if entry.get("use_pickle") or file_name.startswith(_PICKLED_PREFIXES):
                            found.append(f"{member}:{name}")
                elif member.endswith(".pt") and not _safe_torch_payload(archive.read(member)):
                    found.append(member)
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError) as exc:
        raise ModelSourceError(
            f"'{path}' is not a readable torch.export program (.pt2): {type(exc).__name__}: {exc}"
        ) from exc
    return found


def load_pt2(
    path: Path, *, trust_pickle: bool = False
) -> tuple[Any, ExportedModule, list[TensorSpec], Batch]:
    """Read a `.pt2`: the `ExportedProgram`, its module (wrapped), input specs and example inputs.

    A program holding pickled payloads (see `pickled_members`) is refused unless
    `trust_pickle` (default False). Input names come from nnship's metadata when the file was
    written by `save_pt2`, otherwise from the graph signature's user inputs (the original
    `forward`'s argument names). A symbolic axis 0 becomes "batch"; other symbolic axes
    `<input>_dim<i>`.
    """
    pickled = pickled_members(path)
    if pickled and not trust_pickle:
        raise ModelSourceError(
            f"'{path}' holds pickled objects ({', '.join(pickled[:3])}) that loading would "
            "run as code. If you trust this file, pass --trust-pickle "
            "(recipe: [model] trust_pickle = true)"
        )
    extra = {_META_FILE: ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # zip/JSON/version errors all mean "not a readable program"
        raise ModelSourceError(
            f"'{path}' is not a readable torch.export program (.pt2): {type(exc).__name__}: {exc}"
        ) from exc
    names, by_keyword = _calling_convention(program)
    if extra.get(_META_FILE):
        meta = json.loads(extra[_META_FILE])
        names, by_keyword = list(meta["input_names"]), bool(meta["by_keyword"])
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    specs: list[TensorSpec] = []
    for graph_name, name in zip(program.graph_signature.user_inputs, names):
        value = placeholders[graph_name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise ModelSourceError(
                f"'{path}': input '{name}' is not a tensor ({type(value).__name__}); "
                "nnship supports programs whose inputs are all tensors"
            )
        dims = [
            d if isinstance(d, int) else ("batch" if i == 0 else f"{name}_dim{i}")
            for i, d in enumerate(value.shape)
        ]
        specs.append(TensorSpec(name, tuple(dims), _torch_dtype_name(value.dtype)))
    module = ExportedModule(program.module(), names, by_keyword)
    return program, module, specs, _example_inputs(program, names) or example_batch(specs)


def _example_inputs(program: Any, names: list[str]) -> Batch | None:
    stored = getattr(program, "example_inputs", None)
    if not stored:
        return None
    args, kwargs = stored
    values = dict(zip(names, args))
    values.update(kwargs)
    if set(values) != set(names) or not all(isinstance(v, torch.Tensor) for v in values.values()):
        return None
    return {n: values[n].detach().cpu().numpy() for n in names}
