"""One call of `torch.onnx.export` with either exporter, writing an ONNX file, and failures
turned into a short `ExportError` that names the model, the op or the line of user code.

Contract: `run_torch_exporter` writes exactly one ONNX model (plus external data when
`large`) at `path`; the module is called with its inputs as keyword arguments named by the
input specs, or positionally in spec order when those names are not `forward`'s parameters
(`nnship.sources.binding`); ONNX inputs and outputs carry the given names. It raises `ExportError` (the
torch exception kept as `__cause__`) on any exporter failure.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from nnship.core.errors import ExportError
from nnship.sources.binding import pass_by_keyword

log = logging.getLogger(__name__)

_NOISY_LOGGERS = ("torch", "onnxscript", "onnx_ir")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LIBRARY_DIRS = tuple(
    os.path.dirname(str(m.__file__)) + os.sep for m in (torch, contextlib) if m.__file__
)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[io.StringIO]:
    """Silence the exporters' chatter (torchvision-missing warnings, deprecation notices, graph
    dumps printed on failure) for the block; what they print is logged at debug level.

    The dynamo exporter prints partial graphs straight to stderr when torch.export fails, so
    the Python-level streams are redirected too (this does not touch file descriptors).
    """
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    captured = io.StringIO()
    try:
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
        ):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        text = captured.getvalue().strip()
        if text:
            log.debug("exporter output:\n%s", text)


def dynamic_shapes(
    module: Any, names: list[str], axes: dict[str, dict[int, str]]
) -> dict[str, Any] | None:
    """`torch.export` dynamic shapes for keyword inputs `names`: one shared `Dim` per axis name.

    When `forward` takes `**kwargs` instead of named parameters (e.g. a module loaded from a
    .pt2), the per-input shapes are nested under that parameter's name, as torch.export wants.
    """
    if not any(axes.get(n) for n in names):
        return None
    dims: dict[str, Any] = {}
    per_input = {
        n: {
            axis: dims.setdefault(dim, torch.export.Dim(dim))
            for axis, dim in axes.get(n, {}).items()
        }
        or None
        for n in names
    }
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return per_input
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if all(n in params and params[n].kind in named for n in names):
        return per_input
    var_kw = next(
        (p.name for p in params.values() if p.kind == inspect.Parameter.VAR_KEYWORD), None
    )
    return {var_kw: per_input} if var_kw else per_input


def run_torch_exporter(
    model: Any,
    inputs: dict[str, torch.Tensor],
    path: Path,
    *,
    exporter: str,
    opset: int,
    axes: dict[str, dict[int, str]],
    output_names: list[str],
    large: bool = False,
) -> None:
    """Export `model` (an `nn.Module`, or a `torch.export.ExportedProgram` with "dynamo") called
    as `model(**inputs)` to `path`. `axes`: symbolic axes per input ({name: {axis: dim name}}).
    `large`: store weights as external data (models over 2 GB)."""
    names = list(inputs)
    label = model_label(model)
    # Declared names that are not forward's parameters bind by position (e.g. `--input x` for
    # `forward(self, inputs)`), as the torch runner calls the model.
    by_keyword = isinstance(model, torch.export.ExportedProgram) or pass_by_keyword(model, names)
    args: tuple[Any, ...] = () if by_keyword else tuple(inputs.values())
    kwargs = inputs if by_keyword else None
    try:
        with quiet_exporter(), torch.no_grad():
            if exporter == "dynamo":
                is_program = isinstance(model, torch.export.ExportedProgram)
                shapes = None if is_program else dynamic_shapes(model, names, axes)
                if shapes is not None and not by_keyword:
                    shapes = tuple(shapes[n] for n in names)
                program = torch.onnx.export(
                    model,
                    args,
                    kwargs=kwargs,
                    dynamo=True,
                    opset_version=opset,
                    input_names=names,
                    output_names=output_names,
                    dynamic_shapes=shapes,
                    verbose=False,
                    optimize=True,
                )
                if program is None:  # only None when given a file name
                    raise ExportError(f"The dynamo exporter returned nothing for {label}")
                program.save(str(path), external_data=large)
            elif exporter == "torchscript":
                if isinstance(model, torch.export.ExportedProgram):
                    raise ExportError(
                        f"{label} is a torch.export program (.pt2): it can only be exported "
                        "with exporter='dynamo' (--exporter dynamo)"
                    )
                dynamic_axes = {n: {a: d for a, d in axes[n].items()} for n in names if axes.get(n)}
                torch.onnx.export(
                    model,
                    args,
                    str(path),
                    kwargs=kwargs,
                    dynamo=False,
                    opset_version=opset,
                    input_names=names,
                    output_names=output_names,
                    dynamic_axes=dynamic_axes or None,
                    do_constant_folding=True,
                )
            else:
                raise ExportError(f"Unknown exporter '{exporter}'; choose dynamo or torchscript")
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(summarize_export_error(exc, label, exporter)) from exc
    if not path.is_file():
        raise ExportError(f"The {exporter} exporter wrote no ONNX file for {label}")


def model_label(model: Any) -> str:
    """A short name for messages: the module's class, or "the exported program"."""
    if isinstance(model, torch.export.ExportedProgram) or type(model).__name__ == "ExportedModule":
        return "the exported program"
    return type(model).__name__


def summarize_export_error(exc: BaseException, label: str, exporter: str) -> str:
    """A few lines saying what failed: the innermost cause's message (e.g. "No ONNX function
    found for aten._linalg_svd") and, when the failure happened while running user code, the
    file:line and source of that code."""
    chain = _chain(exc)
    root = chain[-1]
    message = _first_lines(root, 3)
    step = _dynamo_step(chain[0])
    where = _user_frame(chain)
    hint = (
        "try exporter='torchscript' (--exporter torchscript) or rewrite that code"
        if exporter == "dynamo"
        else "try exporter='dynamo' (--exporter dynamo) or replace the op"
    )
    parts = [f"Cannot export {label} to ONNX with the {exporter} exporter{step}: "]
    parts.append(f"{type(root).__name__}: {message}")
    if where:
        parts.append(f" (at {where})")
    parts.append(f". {hint.capitalize()}; run with --debug for the full torch traceback")
    return "".join(parts)


# Exceptions that only steer control flow: an error raised while one was being handled (e.g.
# `inspect.Signature.bind` raising TypeError inside `except StopIteration`) is not caused by it.
_CONTROL_FLOW = (StopIteration, StopAsyncIteration, GeneratorExit)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes down to the root: the explicit `__cause__`, else the implicit
    `__context__` unless suppressed or a control-flow exception."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
            continue
        context = current.__context__
        suppressed = current.__suppress_context__ or isinstance(context, _CONTROL_FLOW)
        current = None if suppressed else context
    return seen


def _first_lines(exc: BaseException, count: int) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    short = " ".join(lines[:count])
    return short if len(short) < 400 else short[:397] + "..."


def _dynamo_step(exc: BaseException) -> str:
    """The dynamo exporter says which of its 3 steps failed ("This is step 1/3")."""
    match = re.search(r"step (\d)/3", _ANSI.sub("", str(exc)))
    steps = {"1": "capture with torch.export", "2": "decomposition", "3": "ONNX conversion"}
    return f" (step {steps[match.group(1)]})" if match and match.group(1) in steps else ""


def _user_frame(chain: list[BaseException]) -> str:
    """The deepest traceback frame outside torch and the standard library: the user's code."""
    best = ""
    for exc in chain:
        for frame in traceback.extract_tb(exc.__traceback__):
            filename = frame.filename
            if filename.startswith(_LIBRARY_DIRS) or "site-packages" in filename:
                continue
            if f"{os.sep}nnship{os.sep}exporter{os.sep}" in filename or filename.startswith("<"):
                continue
            best = f"{os.path.basename(filename)}:{frame.lineno} `{(frame.line or '').strip()}`"
    return best
