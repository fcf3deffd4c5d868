"""Model sources: load a model from a factory, a `.pt2`, a state dict, a pickle or an `.onnx`.

`load_model` is the first stage of the float path (docs/architecture.md). Sources:

- `package.module:factory` or `path/to/file.py:factory`, called with `factory_kwargs`;
  `weights=` names a state dict (`torch.load(weights_only=True)`) to load into it.
- `model.pt2`: a `torch.export` program (see `save_pt2`); one holding pickled payloads
  (tensor subclasses, opaque objects) needs `trust_pickle=True`.
- `model.pt` / `.pth` / `.ckpt` / `.bin`: a full pickled `nn.Module` (`torch.save(model)`);
  loaded only with `trust_pickle=True`, because unpickling runs arbitrary code.
- `model.onnx`: the float ONNX is the baseline; the torch stages are skipped.
- an `nn.Module` object (Python API).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnship.core import Batch, TensorSpec, example_batch
from nnship.core.errors import ModelSourceError
from nnship.core.fileio import sha256_file
from nnship.core.importing import looks_like_object_spec, resolve_object
from nnship.sources.pt2 import ExportedModule, load_pt2, save_pt2

__all__ = ["ExportedModule", "LoadedModel", "load_model", "load_state_dict", "save_pt2"]

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".tar")
"""File suffixes read as a full pickled module (with `trust_pickle=True`)."""

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
"""Keys under which training scripts commonly nest the state dict inside a checkpoint dict."""

_PICKLE_HINT = (
    "Unpickling runs arbitrary code, so nnship does not do it by default. If you trust this "
    "file, pass --trust-pickle (recipe: [model] trust_pickle = true); better, save "
    "model.state_dict() and load it with a factory and weights="
)


@dataclass
class LoadedModel:
    """A loaded model source: the torch module (None for `.onnx`), or the ONNX baseline path.

    `input_specs` is empty when a factory was loaded without `inputs`; stages that need them
    call `require_inputs`. `example_inputs` are deterministic arrays matching the specs.
    """

    source: str
    module: nn.Module | None
    onnx_path: Path | None
    input_specs: list[TensorSpec]
    example_inputs: Batch | None
    fingerprint: str
    exported_program: Any = None
    """The `torch.export.ExportedProgram` when the source is a `.pt2`, else None."""

    @property
    def is_onnx(self) -> bool:
        """True when the source is an ONNX file (no torch module; the ONNX is the baseline)."""
        return self.module is None

    def require_inputs(self, purpose: str = "export") -> list[TensorSpec]:
        """The input specs, or a `ModelSourceError` saying how to declare them."""
        if self.input_specs:
            return self.input_specs
        hint = ""
        if self.module is not None:
            params = _forward_arg_names(self.module)
            if params:
                hint = f" ({type(self.module).__name__}.forward takes: {', '.join(params)})"
        raise ModelSourceError(
            f"Model '{self.source}' needs input shapes for {purpose}{hint}: pass "
            "--input NAME:SHAPE[:DTYPE] (e.g. --input x:1x3x224x224) or set "
            "[model] inputs in the recipe"
        )


def _forward_arg_names(module: nn.Module) -> list[str]:
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _as_specs(inputs: Sequence[TensorSpec | str] | None) -> list[TensorSpec]:
    return [s if isinstance(s, TensorSpec) else TensorSpec.parse(s) for s in inputs or []]


def _hash_state_dict(digest: Any, state: Mapping[str, torch.Tensor]) -> None:
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        # Viewing as bytes works for every dtype (bfloat16 has no numpy equivalent).
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelSourceError(f"{what} '{path}' does not exist")


def _torch_load(path: Path, *, trust_pickle: bool, what: str) -> Any:
    """`torch.load` with `weights_only=True`; full unpickling only with `trust_pickle`."""
    _check_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            raise ModelSourceError(
                f"{what} '{path}' holds pickled Python objects, not just tensors. {_PICKLE_HINT}"
            ) from exc
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise ModelSourceError(
            f"{what} '{path}' is not a readable PyTorch checkpoint (truncated or another "
            f"format?): {type(exc).__name__}: {exc}"
        ) from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # the pickle references code that is not importable here
        raise ModelSourceError(
            f"{what} '{path}' could not be unpickled: {type(exc).__name__}: {exc}. "
            "The classes it was saved with must be importable."
        ) from exc


def load_state_dict(path: Path | str, *, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from a checkpoint file.

    Accepts a bare state dict, or a dict nesting it under "state_dict", "model_state_dict"
    or "model" (as training scripts save them), or (with `trust_pickle`) a pickled module.
    A "module." prefix on every key (from `DataParallel`) is removed.
    """
    path = Path(path)
    obj = _torch_load(path, trust_pickle=trust_pickle, what="Weights file")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            nested = obj.get(key)
            if isinstance(nested, nn.Module):
                nested = nested.state_dict()
            if isinstance(nested, Mapping) and nested:
                obj = nested
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelSourceError(
            f"Weights file '{path}' holds no state dict (found {type(obj).__name__})"
        )
    non_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise ModelSourceError(
            f"Weights file '{path}' is a dict but not a state dict: entries {non_tensors[:5]} "
            f"are not tensors (top-level keys: {list(obj)[:8]})"
        )
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _first(items: list[str], n: int = 5) -> str:
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _apply_state_dict(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    expected = module.state_dict()
    # BatchNorm fills num_batches_tracked itself when old checkpoints lack it.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_first(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_first(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {_first(mismatched, 3)}")
        raise ModelSourceError(
            f"Weights '{where}' do not fit {type(module).__name__}: "
            + "; ".join(parts)
            + ". Check the factory arguments (width, num_classes, ...) match the checkpoint."
        )
    module.load_state_dict(state, strict=False)


def _call_factory(
    source: str, kwargs: Mapping[str, Any], base_dir: Path | None
) -> tuple[nn.Module, Path | None]:
    factory, defined_in = resolve_object(
        source, what="Model factory", error=ModelSourceError, base_dir=base_dir
    )
    if not callable(factory):
        raise ModelSourceError(
            f"Model factory '{source}' is a {type(factory).__name__}, not a callable"
        )
    try:
        module = factory(**kwargs)
    except Exception as exc:
        raise ModelSourceError(
            f"Model factory '{source}' raised {type(exc).__name__}: {exc}"
            + (f" (called with {dict(kwargs)})" if kwargs else "")
        ) from exc
    if not isinstance(module, nn.Module):
        raise ModelSourceError(
            f"Model factory '{source}' returned a {type(module).__name__}, not a torch.nn.Module"
        )
    return module, defined_in


def _from_factory(
    source: str,
    specs: list[TensorSpec],
    kwargs: Mapping[str, Any],
    weights: Path | None,
    trust_pickle: bool,
    base_dir: Path | None,
) -> LoadedModel:
    module, defined_in = _call_factory(source, kwargs, base_dir)
    if weights is not None:
        _apply_state_dict(module, load_state_dict(weights, trust_pickle=trust_pickle), str(weights))
    module.eval()
    digest = hashlib.sha256(b"factory\0" + source.encode())
    digest.update(json.dumps(dict(kwargs), sort_keys=True, default=repr).encode())
    if defined_in is not None and defined_in.is_file():
        digest.update(defined_in.read_bytes())
    _hash_state_dict(digest, module.state_dict())
    example = example_batch(specs) if specs else None
    return LoadedModel(source, module, None, specs, example, digest.hexdigest())


def _from_module(module: nn.Module, specs: list[TensorSpec]) -> LoadedModel:
    module.eval()
    digest = hashlib.sha256(b"module\0" + type(module).__qualname__.encode())
    _hash_state_dict(digest, module.state_dict())
    example = example_batch(specs) if specs else None
    name = f"<{type(module).__name__} object>"
    return LoadedModel(name, module, None, specs, example, digest.hexdigest())


def _check_declared(path: Path, declared: list[TensorSpec], found: list[TensorSpec]) -> None:
    """Declared `inputs` must name the same inputs the file defines (the file's shapes win)."""
    if declared and [s.name for s in declared] != [s.name for s in found]:
        raise ModelSourceError(
            f"Declared inputs {[s.name for s in declared]} do not match the inputs of "
            f"'{path}': {[s.name for s in found]}; drop --input or use the model's names"
        )


def _from_onnx(path: Path, declared: list[TensorSpec]) -> LoadedModel:
    from nnship.onnx.graph import load_onnx, onnx_input_specs

    specs = onnx_input_specs(load_onnx(path, load_weights=False))
    _check_declared(path, declared, specs)
    return LoadedModel(str(path), None, path, specs, example_batch(specs), sha256_file(path))


def _from_pt2(path: Path, declared: list[TensorSpec], trust_pickle: bool) -> LoadedModel:
    _check_file(path, "Model file")
    program, module, specs, example = load_pt2(path, trust_pickle=trust_pickle)
    _check_declared(path, declared, specs)
    return LoadedModel(str(path), module, None, specs, example, sha256_file(path), program)


def _from_pickle(path: Path, specs: list[TensorSpec], trust_pickle: bool) -> LoadedModel:
    obj = _torch_load(path, trust_pickle=trust_pickle, what="Model file")
    if not isinstance(obj, nn.Module):
        kind = "a state dict" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise ModelSourceError(
            f"Model file '{path}' holds {kind}, not a full nn.Module. A state dict needs the "
            "model's code: use a factory source ('package.module:factory' or 'file.py:factory') "
            f"with weights='{path}'"
        )
    obj.eval()
    example = example_batch(specs) if specs else None
    return LoadedModel(str(path), obj, None, specs, example, sha256_file(path))


def load_model(
    source: str | Path | nn.Module,
    *,
    inputs: Sequence[TensorSpec | str] | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    base_dir: Path | str | None = None,
) -> LoadedModel:
    """Load a model source (see the module docstring for the accepted forms).

    `inputs`: input specs (`TensorSpec` or the CLI form `NAME:SHAPE[:DTYPE]`); needed to export a
    factory or pickled module, optional otherwise (for `.pt2`/`.onnx` the file's own specs are
    used, and declared names must match them). `factory_kwargs` (default none) and `weights`
    apply to factory sources only. `trust_pickle` (default False) allows unpickling a full
    module, a checkpoint holding Python objects, or a `.pt2` with pickled payloads. Relative `file.py:factory` paths resolve against `base_dir` (default: the working
    directory). The returned module is in eval mode. Raises `ModelSourceError` (or
    `OnnxModelError` for a bad `.onnx`) naming the source at fault.
    """
    specs = _as_specs(inputs)
    kwargs = dict(factory_kwargs or {})
    weights_path = Path(weights) if weights is not None else None
    if isinstance(source, nn.Module):
        if weights_path is not None:
            _apply_state_dict(
                source, load_state_dict(weights_path, trust_pickle=trust_pickle), str(weights_path)
            )
        return _from_module(source, specs)
    text = str(source)
    base = Path(base_dir) if base_dir is not None else None
    if looks_like_object_spec(text):
        return _from_factory(text, specs, kwargs, weights_path, trust_pickle, base)
    if kwargs or weights_path is not None:
        what = "factory_kwargs" if kwargs else "weights"
        raise ModelSourceError(
            f"{what} only apply to a factory source ('package.module:factory'), not to '{text}'"
        )
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _from_onnx(path, specs)
    if suffix == ".pt2":
        return _from_pt2(path, specs, trust_pickle)
    if suffix in PICKLE_SUFFIXES:
        return _from_pickle(path, specs, trust_pickle)
    if not path.exists():
        raise ModelSourceError(
            f"Model source '{text}' is neither an existing file nor 'package.module:factory'"
        )
    raise ModelSourceError(
        f"Model file '{path}' has an unknown type '{suffix}': expected .onnx, .pt2, "
        f"{', '.join(PICKLE_SUFFIXES)}, or a 'package.module:factory' source"
    )
