"""`nnship check --target tensorrt`: lint an ONNX model for a backend without its runtime."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.options import JsonArgs

JSON = JsonArgs("also write the findings as JSON")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="lint an ONNX model for a deployment target (no GPU or TensorRT needed)",
        description=(
            "Check an ONNX model against what the target's ONNX importer accepts, on any "
            "machine. For --target tensorrt: every op in the TensorRT ONNX parser's supported "
            "list, opset >= 13, and for Q/DQ models INT8 only, zero points all zero, scales "
            "positive and finite, per-channel weight axes on the output channel, activations "
            "per-tensor. Each finding names the node and the rule."
        ),
        epilog="Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 unreadable input.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL.onnx", help="the ONNX model")
    parser.add_argument("--target", choices=["tensorrt"], default="tensorrt",
                        help="deployment target (default tensorrt)")  # fmt: skip
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api

    result = api.check(args.model, target=args.target)
    for finding in result.findings:
        print(finding)
    verdict = "OK" if result.passed else "FAIL"
    print(
        f"{verdict}: {args.model} for TensorRT (parser list of TensorRT "
        f"{result.tensorrt_version}): {len(result.errors)} error(s), "
        f"{len(result.warnings)} warning(s)"
    )
    JSON.write(args, result.to_dict())
    return 0 if result.passed else 1
