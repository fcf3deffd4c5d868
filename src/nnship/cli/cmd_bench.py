"""`nnship bench`: latency of one artifact at one or more batch sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.cmd_validate import add_latency_args, latency_overrides
from nnship.core.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="measure latency, throughput, cold start and memory of one artifact",
        description=(
            "Time one artifact: warm-up until the median is stable, then a fixed number of runs "
            "(--runs, default 200) or a time budget; prints p50/p90/p99, mean, CV and "
            "throughput per batch size, cold start (load) time and peak memory. Options this "
            "command does not know (e.g. --hint latency --num-streams 2 for OpenVINO) are "
            "passed to the backend's load; put them after MODEL."
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help=".onnx, OpenVINO .xml or compile directory, TensorRT engine")  # fmt: skip
    parser.add_argument("--backend", help="backend (default: from the path; .onnx -> onnxruntime)")
    parser.add_argument("--batch", type=int, action="append", metavar="N",
                        help="batch size; repeat for several (default 1)")  # fmt: skip
    parser.add_argument("--data", help="time on the first samples of this data (default: "
                        "deterministic example inputs)")  # fmt: skip
    parser.add_argument("--input", action="append", dest="inputs", metavar="NAME:SHAPE[:DTYPE]",
                        help="example input shape (batch axis replaced by --batch)")  # fmt: skip
    parser.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend load option, e.g. -O hint=throughput")  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write results as JSON")
    add_latency_args(parser)
    parser.set_defaults(func=run, pass_unknown_options=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from nnship import api
    from nnship.validate.commands import parse_backend_options
    from nnship.validate.config import LatencyConfig
    from nnship.validate.render.cells import fmt
    from nnship.validate.render.terminal import print_latency
    from nnship.validate.report import summarize_errors

    overrides = latency_overrides(args)
    if args.batch:
        overrides["batch_sizes"] = args.batch
    try:
        latency = LatencyConfig(**overrides)
    except ValidationError as exc:
        raise DataError(f"Bad bench option: {summarize_errors(exc)}") from exc
    options = parse_backend_options(args.option)
    options.update(parse_backend_options(getattr(args, "unknown_options", [])))
    result = api.bench(
        args.model,
        backend=args.backend,
        latency=latency,
        data=args.data,
        inputs=args.inputs,
        backend_options=options,
    )
    print_latency({result.label: result.latency}, title=f"nnship bench {args.model}")
    mem = result.run_memory
    print(
        f"cold start (load) {fmt(result.cold_start_ms, 1)} ms; size "
        f"{fmt(result.size_bytes / 1e6 if result.size_bytes is not None else None, 3)} MB; "
        f"peak RSS during runs +{fmt(mem.peak_delta_mb if mem else None, 1)} MB "
        f"({mem.method if mem else 'n/a'})"
    )
    if args.json:
        result.save(args.json)
    return 0
