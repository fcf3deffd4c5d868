"""`export_onnx`: torch -> ONNX, checked, shape-inferred, optionally simplified, and verified
against torch before anything is written at the output path.

Contract (docs/architecture.md): given a module (or a `LoadedModel`-like object with
`.module`, `.input_specs`, `.example_inputs`) and its input specs, write one ONNX model at
`out_path` whose inputs are the spec names (axis 0 symbolic "batch" by default) and whose
outputs follow `flatten_outputs` naming, and which agrees with torch within the configured
tolerance on the verification samples. On any failure nothing is left at `out_path`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from nnship.backends.torch_runner import TorchRunner, eval_mode
from nnship.core import Batch, TensorSpec, example_batch
from nnship.core.errors import ExportError
from nnship.core.fileio import ensure_writable_dir, file_size_bytes
from nnship.exporter.config import ExportConfig
from nnship.exporter.graph import check_and_infer, emitted_opset, rename_batch_dims, simplify
from nnship.exporter.torch_export import model_label, run_torch_exporter
from nnship.exporter.verify import VerificationResult, verification_samples, verify_onnx
from nnship.onnx.graph import _EXTERNAL_DATA_THRESHOLD, onnx_input_specs, save_onnx

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What `export_onnx` produced. `max_abs_error` is over all outputs and verification
    samples; `exporter` is the exporter actually used (see `fallback_reason`)."""

    onnx_path: Path
    input_specs: list[TensorSpec]
    output_names: list[str]
    max_abs_error: float
    exporter: str
    opset: int
    per_output_error: dict[str, float] = field(default_factory=dict)
    simplified: bool = False
    notes: list[str] = field(default_factory=list)
    """Why simplification was skipped or dropped, and similar decisions."""
    fallback_reason: str | None = None
    """Set when `fallback` was on and the chosen exporter failed: its error."""
    verify_batch_size: int = 1
    verify_samples: int = 0
    size_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx_path": str(self.onnx_path),
            "input_specs": [s.to_dict() for s in self.input_specs],
            "output_names": list(self.output_names),
            "max_abs_error": self.max_abs_error,
            "exporter": self.exporter,
            "opset": self.opset,
            "per_output_error": dict(self.per_output_error),
            "simplified": self.simplified,
            "notes": list(self.notes),
            "fallback_reason": self.fallback_reason,
            "verify_batch_size": self.verify_batch_size,
            "verify_samples": self.verify_samples,
            "size_bytes": self.size_bytes,
            "seconds": self.seconds,
        }


def export_onnx(
    model: Any,
    out_path: Path | str,
    *,
    input_specs: Sequence[TensorSpec] | None = None,
    example_inputs: Batch | None = None,
    options: ExportConfig | None = None,
) -> ExportResult:
    """Export `model` to ONNX at `out_path` and verify it against torch.

        `model`: an `nn.Module`, a `torch.export.ExportedProgram`, or a `LoadedModel` (anything with
        `.module`, `.input_specs`, `.example_inputs`). `input_specs` (default: the model's) name the
        inputs, passed to `forward` as keyword arguments (by position, in spec order, when the names
    are not `forward`'s parameters); `example_inputs` (default: the model's, else
        `nnship.core.example_batch(input_specs)`) are traced and verified on. `options` defaults to
        `ExportConfig()`: dynamo exporter, opset 18, dynamic batch, onnxslim simplification,
        rtol 1e-3 / atol 1e-4. The module's training flag is restored afterwards.

        Raises `ExportError` when torch cannot export the model (naming the model and the op or
        line of code), when the result fails the ONNX checker, or when an output disagrees with
        torch (naming the output, the max abs error and the tolerance); `OutputPathError` when
        `out_path`'s directory is not writable. Nothing is left at `out_path` on failure.
    """
    options = options or ExportConfig()
    started = time.perf_counter()
    target, module, specs, examples = _resolve(model, input_specs, example_inputs)
    out_path = Path(out_path)
    ensure_writable_dir(out_path.parent if str(out_path.parent) else Path("."))
    with eval_mode(module):
        reference = TorchRunner(module, specs, dynamic_batch=False)
        try:
            output_names = list(reference.run(examples, check=False))
        except Exception as exc:
            raise ExportError(
                f"Running {model_label(target)} on the example inputs failed before export: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        attempts = [options.exporter]
        if options.fallback:
            attempts.append("torchscript" if options.exporter == "dynamo" else "dynamo")
        fallback_reason = None
        for i, exporter in enumerate(attempts):
            try:
                model_proto, verification, simplified, notes = _export_verified(
                    target,
                    module,
                    reference,
                    examples,
                    output_names,
                    exporter,
                    options,
                    out_path,
                )
                break
            except ExportError as exc:
                if i + 1 == len(attempts):
                    raise
                fallback_reason = f"{exporter}: {exc}"
                log.warning(
                    "%s exporter failed, falling back to %s: %s", exporter, attempts[i + 1], exc
                )
    save_onnx(model_proto, out_path)
    result = ExportResult(
        onnx_path=out_path,
        input_specs=onnx_input_specs(model_proto),
        output_names=[o.name for o in model_proto.graph.output],
        max_abs_error=verification.max_abs_error,
        exporter=exporter,
        opset=emitted_opset(model_proto),
        per_output_error=verification.per_output,
        simplified=simplified,
        notes=notes,
        fallback_reason=fallback_reason,
        verify_batch_size=verification.batch_size,
        verify_samples=verification.samples,
        size_bytes=file_size_bytes(out_path),
        seconds=time.perf_counter() - started,
    )
    log.debug(
        "exported %s with %s (opset %d): max abs error %.3g on %d sample(s) of batch %d",
        out_path,
        exporter,
        result.opset,
        result.max_abs_error,
        result.verify_samples,
        result.verify_batch_size,
    )
    return result


def _resolve(
    model: Any, input_specs: Sequence[TensorSpec] | None, example_inputs: Batch | None
) -> tuple[Any, nn.Module, list[TensorSpec], Batch]:
    """(export target, module to run, specs, example inputs) from any accepted model form."""
    target: Any = model
    if not isinstance(model, nn.Module | torch.export.ExportedProgram):
        if not hasattr(model, "module"):
            raise ExportError(
                f"Cannot export a {type(model).__name__}: expected an nn.Module, an "
                "ExportedProgram or a loaded model"
            )
        if model.module is None:
            raise ExportError(
                f"Model '{getattr(model, 'source', model)}' is already ONNX; there is nothing "
                "to export"
            )
        input_specs = input_specs or getattr(model, "input_specs", None)
        if example_inputs is None:
            example_inputs = getattr(model, "example_inputs", None)
        program = getattr(model, "exported_program", None)
        if isinstance(program, torch.export.ExportedProgram):
            # A .pt2: export the program itself (no second trace); run the loader's module.
            return (
                program,
                model.module,
                *_specs_and_examples(program, input_specs, example_inputs),
            )
        target = model.module
    if isinstance(target, torch.export.ExportedProgram):
        module = _ProgramModule(target)
        if not input_specs and example_inputs is None:
            stored: tuple[tuple[Any, ...], dict[str, Any]] = getattr(
                target, "example_inputs", None
            ) or ((), {})
            if stored[0] or not stored[1]:
                raise ExportError(
                    "An ExportedProgram exported with positional inputs needs input_specs "
                    "naming them (or load the .pt2 with nnship.sources.models.load_model)"
                )
            example_inputs = {k: v.detach().cpu().numpy() for k, v in stored[1].items()}
    else:
        module = target
    return (target, module, *_specs_and_examples(target, input_specs, example_inputs))


def _specs_and_examples(
    target: Any, input_specs: Sequence[TensorSpec] | None, example_inputs: Batch | None
) -> tuple[list[TensorSpec], Batch]:
    specs = list(input_specs or [])
    if not specs and example_inputs:
        specs = [
            TensorSpec(n, tuple(np.shape(a)), np.asarray(a).dtype.name)
            for n, a in example_inputs.items()
        ]
    if not specs:
        raise ExportError(
            f"No input specs for {model_label(target)}: give --input NAME:SHAPE[:DTYPE] "
            "(e.g. x:1x3x224x224)"
        )
    examples = dict(example_inputs) if example_inputs else example_batch(specs)
    names = [s.name for s in specs]
    if sorted(examples) != sorted(names):
        raise ExportError(f"Example inputs {sorted(examples)} do not match the input specs {names}")
    examples = {n: np.ascontiguousarray(examples[n]) for n in names}
    for spec in specs:
        if examples[spec.name].dtype.name != spec.dtype:
            raise ExportError(
                f"Example input '{spec.name}' is {examples[spec.name].dtype.name}, but its spec "
                f"says {spec.dtype}"
            )
    return specs, examples


class _ProgramModule(nn.Module):
    """An ExportedProgram's module made safe for `.eval()`/`.train()` (which it refuses: its
    mode was fixed at export time), called with keyword inputs whatever convention the program
    was exported with (positional programs get them in input order)."""

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.graph_module = program.module()
        try:
            args_spec = program.call_spec.in_spec.children()[0]  # (args, kwargs) pytree
            self.by_keyword = args_spec.num_children == 0
        except (AttributeError, ValueError, TypeError):  # unknown pytree layout
            self.by_keyword = True

    def train(self, mode: bool = True) -> _ProgramModule:
        self.training = mode  # do not recurse into the graph module
        return self

    def forward(self, **inputs: torch.Tensor) -> Any:
        if self.by_keyword:
            return self.graph_module(**inputs)
        return self.graph_module(*inputs.values())


def _axes(specs: list[TensorSpec], options: ExportConfig) -> dict[str, dict[int, str]]:
    unknown = sorted(set(options.dynamic_axes) - {s.name for s in specs})
    if unknown:
        raise ExportError(
            f"[export] dynamic_axes names unknown input(s) {unknown}; inputs are "
            f"{[s.name for s in specs]}"
        )
    axes: dict[str, dict[int, str]] = {}
    for spec in specs:
        chosen: dict[int, str] = {}
        if options.dynamic_batch and spec.shape:
            chosen[0] = "batch"
        for axis, dim in options.dynamic_axes.get(spec.name, {}).items():
            if axis >= len(spec.shape):
                raise ExportError(
                    f"[export] dynamic_axes: input '{spec.name}' has rank {len(spec.shape)}, "
                    f"so axis {axis} does not exist"
                )
            chosen[axis] = dim
        axes[spec.name] = chosen
    return axes


def _export_verified(
    target: Any,
    module: nn.Module,
    reference: TorchRunner,
    examples: Batch,
    output_names: list[str],
    exporter: str,
    options: ExportConfig,
    out_path: Path,
) -> tuple[onnx.ModelProto, VerificationResult, bool, list[str]]:
    """Export with one exporter, check, verify, simplify; returns the model to save."""
    specs = reference.input_specs
    axes = _axes(specs, options)
    large = _parameter_bytes(module) > _EXTERNAL_DATA_THRESHOLD
    inputs = {n: torch.from_numpy(a.copy()) for n, a in examples.items()}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.", dir=out_path.parent) as tmp:
        raw_path = Path(tmp) / "exported.onnx"
        run_torch_exporter(
            target,
            inputs,
            raw_path,
            exporter=exporter,
            opset=options.opset,
            axes=axes,
            output_names=output_names,
            large=large,
        )
        model = check_and_infer(raw_path, f"the {exporter} export of {model_label(target)}")
        opset = emitted_opset(model)
        if opset != options.opset:
            raise ExportError(
                f"The {exporter} exporter produced opset {opset}, not the requested "
                f"{options.opset} (its version converter could not lower the graph); use "
                f"opset >= {opset}, or exporter='torchscript' for older opsets"
            )
        if isinstance(target, torch.export.ExportedProgram):
            rename_batch_dims(model)
        dynamic = all(
            len(i.type.tensor_type.shape.dim) > 0
            and not i.type.tensor_type.shape.dim[0].HasField("dim_value")
            for i in model.graph.input
        )
        if options.dynamic_batch and not dynamic:
            notes.append("the batch axis is static in the exported graph (the .pt2 fixed it)")
        batch = _verify_batch(examples) if dynamic else None
        samples = verification_samples(examples, count=options.verify_samples, batch_size=batch)
        expected = [reference.run(s, check=False) for s in samples]
        candidate = None
        if options.simplify and large:
            notes.append("simplification skipped: the model is over 2 GB")
        elif options.simplify:
            candidate, why = _try_simplify(model, samples, expected, options)
            if why:
                notes.append(why)
                log.warning("%s", why)
        if candidate is not None:
            return candidate[0], candidate[1], True, notes
        verification = _verify(model, samples, expected, options, Path(tmp), large)
        return model, verification, False, notes


def _try_simplify(
    model: onnx.ModelProto, samples: list[Batch], expected: list[dict], options: ExportConfig
) -> tuple[tuple[onnx.ModelProto, VerificationResult] | None, str | None]:
    """Simplify with onnxslim; keep the result only if it checks and verifies."""
    try:
        slim = simplify(model)
        verification = verify_onnx(slim, expected, samples, rtol=options.rtol, atol=options.atol)
    except ExportError as exc:
        return None, f"simplified model dropped (kept the unsimplified export): {exc}"
    return (slim, verification), None


def _verify(
    model: onnx.ModelProto,
    samples: list[Batch],
    expected: list[dict],
    options: ExportConfig,
    tmp: Path,
    large: bool,
) -> VerificationResult:
    if large:  # a > 2 GB model cannot be serialized in one piece: verify it from a file
        path = tmp / "verify.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True, location="verify.onnx.data")
        return verify_onnx(path, expected, samples, rtol=options.rtol, atol=options.atol)
    return verify_onnx(model, expected, samples, rtol=options.rtol, atol=options.atol)


def _verify_batch(examples: Batch) -> int:
    """Batch size used to verify a dynamic batch axis: different from the traced one."""
    sizes = {int(a.shape[0]) for a in examples.values() if a.ndim}
    return 3 if sizes == {2} else 2


def _parameter_bytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)
