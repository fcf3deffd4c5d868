"""`nnship calibrate`: collect activation statistics once and write the calibration table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from nnship.cli.options import DataArgs, first_invalid_option

_EPILOG = """\
examples:
  nnship calibrate model.onnx --data calib.npz --method entropy -o calib_table.json
  nnship calibrate model.onnx --data images/ --max-samples 256 --trt-cache calib.cache

The table (JSON) holds per tensor min/max, a histogram and NaN/Inf counts, so every range
method and every backend profile reuses it: `nnship quantize --calib-table calib_table.json`.
Tensors with degenerate ranges (constant, NaN/Inf, |x| >= 1e4 such as attention-mask biases)
are listed and get no range: quantizers keep them in float.
"""

DATA = DataArgs(
    "--data",
    required=True,
    help="calibration data (.npy, .npz, folder, image folder, pkg.mod:fn)",
    limit_flag="--max-samples",
    limit_help="use at most N samples (default 512, as nnship quantize and the build; 0 = all)",
)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from nnship.calibration.config import Method

    parser = subparsers.add_parser(
        "calibrate",
        help="collect activation statistics (min/max, histograms) into a calibration table",
        description=(
            "Run the float ONNX model once over calibration data and record, for every float "
            "activation, min/max, an adaptive histogram and NaN/Inf counts. The ranges of "
            "--method are stored with the table; every method can be recomputed from it."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL.onnx", help="the float ONNX model")
    DATA.add_to(parser)
    parser.add_argument("-o", "--output", type=Path, default=Path("calib_table.json"),
                        metavar="TABLE.json",
                        help="where to write the table (default calib_table.json, atomic)")  # fmt: skip
    parser.add_argument("--method", choices=get_args(Method), default="entropy",
                        help="range method stored with the table (default entropy)")  # fmt: skip
    parser.add_argument("--percentile", type=float, default=99.99,
                        help="percent of |x| kept by --method percentile (default 99.99)")  # fmt: skip
    sym = parser.add_mutually_exclusive_group()
    sym.add_argument("--symmetric", dest="symmetric", action="store_true", default=None,
                     help="store symmetric [-a, a] ranges (TensorRT convention)")  # fmt: skip
    sym.add_argument("--asymmetric", dest="symmetric", action="store_false",
                     help="store asymmetric [lo, hi] ranges (default: the method's own)")  # fmt: skip
    parser.add_argument("--num-bins", type=int, default=2048,
                        help="histogram bins per side, resolution of |x| (default 2048)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8,
                        help="samples per inference batch (default 8)")  # fmt: skip
    parser.add_argument("--max-exposed-mb", type=float, default=None, metavar="MB",
                        help="memory budget for exposed tensors per run (default: the "
                        "largest tensor, at least 16 MiB)")  # fmt: skip
    parser.add_argument("--trt-cache", type=Path, default=None, metavar="CALIB.cache",
                        help="also write the ranges as a TensorRT calibration cache")  # fmt: skip
    parser.add_argument("--trt-version", default=None, metavar="VER",
                        help="version field of the TensorRT cache header (default 100300)")  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from nnship import api
    from nnship.calibration.config import CalibrationConfig
    from nnship.core.errors import CalibrationError

    try:
        config = CalibrationConfig(
            method=args.method,
            percentile=args.percentile,
            symmetric=args.symmetric,
            num_bins=args.num_bins,
            batch_size=args.batch_size,
            max_exposed_mb=args.max_exposed_mb,
            **({} if args.max_samples is None else {"max_samples": args.max_samples or None}),
        )
    except ValidationError as exc:
        raise CalibrationError(first_invalid_option(exc)) from None
    table = api.calibrate(
        args.model,
        args.data,
        args.output,
        config,
        trt_cache=args.trt_cache,
        trt_version=args.trt_version,
    )
    stored = table.stored_ranges or {}
    values = stored.get("values", {})
    degenerate = stored.get("degenerate", {})
    tightened = sum(
        1
        for name, r in values.items()
        if r["method"] == config.method
        and (r["lo"] > (table[name].min or 0.0) or r["hi"] < (table[name].max or 0.0))
    )
    fallbacks = {n: r["method"] for n, r in values.items() if r["method"] != config.method}
    out = sys.stdout
    print(
        f"calibrated {len(table)} tensors on {table.num_samples} samples of "
        f"{args.data} -> {args.output}",
        file=out,
    )
    print(
        f"method {config.method}: {len(values)} ranges, {tightened} tighter than min/max",
        file=out,
    )
    for name, how in list(fallbacks.items())[:10]:
        print(f"  not applied to '{name}': {how}", file=out)
    if degenerate:
        print(f"{len(degenerate)} tensor(s) must stay in float:", file=out)
        for name, reason in degenerate.items():
            print(f"  {name}: {reason}", file=out)
    if args.trt_cache:
        print(f"TensorRT calibration cache -> {args.trt_cache}", file=out)
    return 0
