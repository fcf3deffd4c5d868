"""`nnship export MODEL -o out.onnx`: export a PyTorch model to a verified ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nnship.cli.options import JsonArgs, ModelSourceArgs, option_name
from nnship.core.errors import ExportError
from nnship.core.toml import parse_literal_or_text as parse_value  # noqa: F401 - tests import it here

_EPILOG = """\
examples:
  nnship export my_pkg.models:resnet_small --input x:1x3x224x224 -o model.onnx
  nnship export my_pkg.models:encoder --input input_ids:1x128:int64 \\
      --input attention_mask:1x128:int64 --dynamic-axis input_ids:1:sequence \\
      --dynamic-axis attention_mask:1:sequence -o enc.onnx
  nnship export model.py:build --factory-arg width=32 --weights state_dict.pt \\
      --input x:1x3x32x32 -o model.onnx
  nnship export pruned.pt2 -o pruned.onnx      (a .pt2 carries its own inputs)

Every export is checked (onnx.checker, full check) and verified numerically against torch
with ONNX Runtime (at batch size 2 when the batch axis is dynamic); a mismatch beyond
--atol + --rtol * |torch| fails with exit code 2 and leaves no file at -o.
"""

MODEL_SOURCE = ModelSourceArgs(
    source_help="model source (see examples)",
    input_help="an input of forward(), e.g. x:1x3x224x224 or ids:1x128:int64 "
    "(dtype default float32; repeatable; the shape is the example shape)",
    factory_arg_help="keyword argument for the factory; VALUE is read as TOML "
    '(width=32, name="a", depths=[1,2]), else as a string (repeatable)',
    weights_help="state dict loaded into the factory's module (weights only)",
)
JSON = JsonArgs("also write the export result as JSON")


def register(subparsers: Any) -> argparse.ArgumentParser:
    from nnship.exporter.config import DEFAULT_ATOL, DEFAULT_OPSET, DEFAULT_RTOL

    parser = subparsers.add_parser(
        "export",
        help="export a PyTorch model to ONNX and verify it against torch",
        description=(
            "Load a PyTorch model (package.module:factory, file.py:factory, .pt2, or a pickled "
            "module with --trust-pickle), export it to ONNX with torch.onnx.export, run the ONNX "
            "checker and shape inference, simplify it with onnxslim (kept only if it still "
            "verifies) and verify its outputs against torch with ONNX Runtime."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    MODEL_SOURCE.add_to(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx",
                        help="where to write the ONNX model")  # fmt: skip
    parser.add_argument("--exporter", choices=["dynamo", "torchscript"],
                        help="torch exporter (default dynamo, torch.export-based)")  # fmt: skip
    parser.add_argument("--fallback", action="store_true", default=None,
                        help="if the exporter fails, try the other one (logged, and recorded)")  # fmt: skip
    parser.add_argument("--opset", type=int,
                        help=f"ONNX opset (default {DEFAULT_OPSET})")  # fmt: skip
    parser.add_argument("--no-simplify", dest="simplify", action="store_false", default=None,
                        help="skip onnxslim simplification (default: simplify)")  # fmt: skip
    parser.add_argument("--no-dynamic-batch", dest="dynamic_batch", action="store_false",
                        default=None, help="keep axis 0 fixed (default: symbolic 'batch')")  # fmt: skip
    parser.add_argument("--dynamic-axis", action="append", default=[], metavar="NAME:AXIS:DIM",
                        help="make another axis symbolic, e.g. input_ids:1:sequence "
                        "(repeatable; the same DIM name means the same size)")  # fmt: skip
    parser.add_argument("--atol", type=float,
                        help=f"verification absolute tolerance (default {DEFAULT_ATOL:g})")  # fmt: skip
    parser.add_argument("--rtol", type=float,
                        help=f"verification relative tolerance (default {DEFAULT_RTOL:g})")  # fmt: skip
    parser.add_argument("--verify-samples", type=int,
                        help="number of batches verified (default 2)")  # fmt: skip
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def _dynamic_axes(items: list[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not parts[1].isdigit():
            raise ExportError(
                f"Bad --dynamic-axis '{item}': expected NAME:AXIS:DIM, e.g. input_ids:1:sequence"
            )
        axes.setdefault(parts[0], {})[int(parts[1])] = parts[2]
    return axes


def _config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from nnship.exporter.config import ExportConfig

    fields = {
        "exporter": args.exporter,
        "fallback": args.fallback,
        "opset": args.opset,
        "simplify": args.simplify,
        "dynamic_batch": args.dynamic_batch,
        "atol": args.atol,
        "rtol": args.rtol,
        "verify_samples": args.verify_samples,
    }
    values = {k: v for k, v in fields.items() if v is not None}
    if args.dynamic_axis:
        values["dynamic_axes"] = _dynamic_axes(args.dynamic_axis)
    try:
        return ExportConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{option_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"Invalid export options: {problems}") from exc


def run(args: argparse.Namespace) -> int:
    from nnship import api

    result = api.export(
        args.model, args.output, **MODEL_SOURCE.api_kwargs(args), options=_config(args)
    )
    JSON.write(args, result.to_dict())
    _print_summary(result)
    return 0


def _print_summary(result: Any) -> None:
    inputs = ", ".join(f"{s.name} {s.shape_str()} {s.dtype}" for s in result.input_specs)
    print(f"wrote {result.onnx_path} ({result.size_bytes / 1e6:.2f} MB)")
    print(f"  exporter   {result.exporter}, opset {result.opset}"
          + (", simplified" if result.simplified else ""))  # fmt: skip
    print(f"  inputs     {inputs}")
    print(f"  outputs    {', '.join(result.output_names)}")
    print(
        f"  verified   max abs error {result.max_abs_error:.3g} on {result.verify_samples} "
        f"batch(es) of {result.verify_batch_size}"
    )
    if result.fallback_reason:
        print(f"  fallback   {result.fallback_reason}")
    for note in result.notes:
        print(f"  note       {note}")
