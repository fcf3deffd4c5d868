"""`nnship bench`: latency of one artifact at one or more batch sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.options import BackendLoadArgs, DataArgs, JsonArgs, LatencyArgs, add_inputs

DATA = DataArgs(
    "--data", help="time on the first samples of this data (default: deterministic example inputs)"
)
LATENCY = LatencyArgs()
BACKEND_OPTIONS = BackendLoadArgs(option_flag=True)
JSON = JsonArgs("also write results as JSON")


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
    DATA.add_to(parser)
    add_inputs(parser, "example input shape (batch axis replaced by --batch)", short=False)
    BACKEND_OPTIONS.add_to(parser)
    JSON.add_to(parser)
    LATENCY.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.validate.render.cells import fmt
    from nnship.validate.render.terminal import print_latency

    result = api.bench(
        args.model,
        backend=args.backend,
        latency=LATENCY.config(args, batch_sizes=args.batch, verb="bench"),
        data=args.data,
        inputs=args.inputs or None,
        backend_options=BACKEND_OPTIONS.options(args),
    )
    print_latency({result.label: result.latency}, title=f"nnship bench {args.model}")
    mem = result.run_memory
    print(
        f"cold start (load) {fmt(result.cold_start_ms, 1)} ms; size "
        f"{fmt(result.size_bytes / 1e6 if result.size_bytes is not None else None, 3)} MB; "
        f"peak RSS during runs +{fmt(mem.peak_delta_mb if mem else None, 1)} MB "
        f"({mem.method if mem else 'n/a'})"
    )
    JSON.write(args, result.to_dict())
    return 0
