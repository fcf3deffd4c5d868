"""`nnship quantize`: write an INT8 QDQ (per backend profile), FP16 or dynamic INT8 ONNX."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnship.cli.options import DataArgs, JsonArgs
from nnship.quantize.config import DEFAULT_METHOD, METHOD_CHOICES, PRECISIONS, PROFILES

_EPILOG = """\
examples:
  nnship quantize model.onnx --calib calib.npy --profile onnxruntime -o model.int8.onnx
  nnship quantize model.onnx --calib calib.npz --profile openvino --method entropy -o m.ov.onnx
  nnship quantize model.onnx --calib-table calib_table.json --profile tensorrt -o m.trt.onnx
  nnship quantize model.onnx --calib calib.npz --max-top1-drop 0.5 --eval eval.npz -o m.onnx
  nnship quantize model.onnx --precision fp16 -o model.fp16.onnx
  nnship quantize model.onnx --precision dynamic-int8 -o model.dyn.onnx

Every node left in float is listed with its reason, and so is the method --method auto chose
with every candidate's score; --json writes the full result.
"""

CALIBRATION = DataArgs(
    "--calib",
    help="calibration data (.npy, .npz, folder, image folder, pkg.mod:fn)",
    limit_flag="--calib-limit",
    limit_help="use at most N calibration samples (default 512)",
)
EVALUATION = DataArgs(
    "--eval",
    help="evaluation data: drift metrics and the fallback's budget",
    limit_flag="--eval-limit",
    limit_help="use at most N evaluation samples (default 1000)",
)
JSON = JsonArgs("also write the result (float nodes, reverts, metrics) as JSON")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "quantize",
        help="quantize an ONNX model: INT8 QDQ per backend profile, FP16, dynamic INT8",
        description=(
            "Quantize a float ONNX model. INT8 writes QuantizeLinear/DequantizeLinear placed "
            "for one backend profile from calibration data (--calib) or a table from "
            "`nnship calibrate` (--calib-table). By default (--method auto) every range "
            "method is tried and the one closest to the float model is kept, judged on --eval "
            "or on held-out calibration samples. With --eval the drift against the float model "
            "is measured; with --max-top1-drop/--min-cosine the most sensitive nodes are "
            "reverted to float until the budget holds."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL.onnx", help="the float ONNX model")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx",
                        help="where to write the quantized model (written atomically)")  # fmt: skip
    parser.add_argument("--precision", choices=PRECISIONS, default="int8",
                        help="int8 (QDQ, default), fp16 or dynamic-int8 (bf16 is an OpenVINO "
                             "precision: nnship compile --backend openvino --precision bf16)")  # fmt: skip
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="backend whose Q/DQ conventions to follow (default onnxruntime)")  # fmt: skip
    parser.add_argument("--method", choices=METHOD_CHOICES, default=None,
                        help=f"activation range method (default {DEFAULT_METHOD}: try each "
                        "method and keep the one closest to the float model on --eval, else "
                        "on held-out --calib samples; with only --calib-table, the table's "
                        "stored method)")  # fmt: skip
    parser.add_argument("--auto-samples", type=int, default=None, metavar="N",
                        help="most samples --method auto compares on (default 512)")  # fmt: skip
    parser.add_argument("--percentile", type=float, default=None,
                        help="percent kept by --method percentile (default 99.99)")  # fmt: skip
    parser.add_argument("--per-tensor", action="store_true",
                        help="per-tensor weights (default per-channel on the output axis)")  # fmt: skip
    data = parser.add_argument_group("data")
    CALIBRATION.add_to(data)
    data.add_argument("--calib-table", type=Path, metavar="TABLE.json",
                      help="calibration table written by `nnship calibrate`")  # fmt: skip
    EVALUATION.add_to(data)
    budget = parser.add_argument_group("accuracy budget (needs --eval)")
    budget.add_argument("--max-top1-drop", type=float, metavar="PTS",
                        help="max top-1 drop in percentage points (labels: accuracy drop, "
                        "else 100 - agreement with float)")  # fmt: skip
    budget.add_argument("--min-cosine", type=float, metavar="C",
                        help="min mean cosine of the first output to float")  # fmt: skip
    budget.add_argument("--max-reverted", type=int, metavar="N",
                        help="most nodes the fallback may revert to float (default 16)")  # fmt: skip
    sel = parser.add_argument_group("node selection and transforms")
    sel.add_argument("--exclude", action="append", default=[], metavar="NODE",
                     help="keep this node in float (repeatable)")  # fmt: skip
    sel.add_argument("--exclude-op-type", action="append", default=[], metavar="OP",
                     help="keep every node of this op type in float (repeatable)")  # fmt: skip
    sel.add_argument("--exclude-regex", action="append", default=[], metavar="RE",
                     help="keep nodes whose name matches this regex in float (repeatable)")  # fmt: skip
    sel.add_argument("--equalization", choices=["auto", "on", "off"], default=None,
                     help="cross-layer equalization (default auto: only if it helps on --eval)")  # fmt: skip
    sel.add_argument("--weight-rounding", choices=["nearest", "adaround"], default=None,
                     help="int8 weight rounding: nearest (default) or adaround (learned on "
                          "--calib, minutes; see docs/quantization.md)")  # fmt: skip
    sel.add_argument("--smoothing", choices=["auto", "on", "off"], default=None,
                     help="SmoothQuant smoothing (default auto: only if it helps on --eval)")  # fmt: skip
    sel.add_argument("--keep-fp16-io", dest="keep_io_types", action="store_true", default=None,
                     help=argparse.SUPPRESS)  # fmt: skip
    sel.add_argument("--fp16-io", dest="keep_io_types", action="store_false",
                     help="FP16: make inputs/outputs float16 too (default: keep float32)")  # fmt: skip
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def _stored_method(table: object) -> str | None:
    stored = getattr(table, "stored_ranges", None)
    return stored.get("method") if isinstance(stored, dict) else None


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.quantize.config import make_config

    table = None
    if args.calib_table is not None:
        from nnship.calibration.table import CalibrationTable

        table = CalibrationTable.load(args.calib_table)
    has_data = args.calib is not None or args.eval is not None
    method = args.method or (None if has_data else _stored_method(table)) or DEFAULT_METHOD
    calibration = {"max_samples": args.calib_limit} if args.calib_limit else {}
    config = make_config(
        precisions=[args.precision],
        profile=args.profile,
        method=method,
        percentile=args.percentile,
        auto_samples=args.auto_samples,
        per_channel=not args.per_tensor,
        exclude={
            "names": args.exclude,
            "op_types": args.exclude_op_type,
            "regex": args.exclude_regex,
        },
        calibration=calibration or None,
        max_top1_drop=args.max_top1_drop,
        min_cosine=args.min_cosine,
        max_reverted=args.max_reverted,
        equalization=args.equalization,
        smoothing=args.smoothing,
        weight_rounding=args.weight_rounding,
        keep_io_types=args.keep_io_types,
        eval_samples=args.eval_limit,
    )
    result = api.quantize(
        args.model,
        args.output,
        config,
        table=table,
        calib_data=args.calib,
        eval_data=args.eval,
        eval_limit=args.eval_limit,
    )
    _print_result(result)
    JSON.write(args, result.to_dict())
    return 0


def _print_result(result) -> None:  # noqa: ANN001
    what = result.precision
    if result.profile:
        what += f" ({result.profile} profile, {result.method} ranges)"
    print(f"{what}: {result.path}")
    for key in ("opset_conversion", "subnormals"):
        summary = result.details.get(key, {}).get("summary")
        if summary and summary != "no subnormal float weights":
            print(f"  {summary}")
    print(
        f"  quantized nodes: {len(result.quantized_nodes)}, float nodes: {len(result.float_nodes)}"
    )
    selection = result.method_selection or {}
    if selection.get("mode") == "auto":
        if "skipped" in selection:
            print(f"  method auto -> {selection['chosen']} ({selection['skipped']})")
        else:
            scores = ", ".join(
                f"{c['method']} {c['score'][0]:.4f}/{c['score'][1]:.5f}"
                for c in selection["candidates"]
            )
            print(
                f"  method auto -> {selection['chosen']} on {selection['data']} "
                f"({selection['seconds']:.1f} s; {scores})"
            )
    for node in result.float_nodes:
        print(f"  float  {node.name} [{node.op_type}]: {node.reason}")
    for tensor, applied in result.details.get("method_not_applied", {}).items():
        print(f"  range  {tensor}: {applied}")
    for rev in result.reverted:
        cost = rev.get("latency_cost_ms")
        cost_txt = "n/a" if cost is None else f"{cost:+.3f} ms"
        module = f" (module {rev['module']})" if rev.get("module") else ""
        print(f"  reverted {rev['node']}{module} [{rev['op_type']}]: latency {cost_txt}")
    for undone in result.details.get("fallback_undone", []):
        print(f"  kept int8 {undone.get('module') or undone['node']}: {undone['decision']}")
    for transform in result.applied_transforms:
        took = f" ({transform['seconds']:.0f} s)" if "seconds" in transform else ""
        print(f"  applied {transform['name']}{took}: {transform.get('decision', '')}")
    if result.metrics:
        shown = {k: round(v, 6) for k, v in result.metrics.items() if k != "samples"}
        print("  vs float: " + json.dumps(shown, sort_keys=True))
    for warning in result.warnings:
        print(f"  warning: {warning}")
