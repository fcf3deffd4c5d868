"""`nnship validate`: the float baseline against candidate artifacts, with gates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nnship.core.errors import DataError

GATE_FLAGS = (
    ("--max-top1-drop", "max_top1_drop", "percentage points of accuracy lost vs the baseline "
     "(without labels: 100 - top-1 agreement)"),
    ("--min-top1-agreement", "min_top1_agreement", "percent of samples with the baseline's top-1"),
    ("--min-top5-agreement", "min_top5_agreement", "percent of samples with the baseline's top-1 "
     "in the candidate's top 5"),
    ("--min-cosine", "min_cosine", "mean per-sample cosine similarity, worst output"),
    ("--min-sqnr-db", "min_sqnr_db", "signal-to-quantization-noise ratio in dB, worst output"),
    ("--max-abs-error", "max_abs_error", "largest absolute output difference"),
    ("--max-latency-ms", "max_latency_ms", "latency in ms at the first latency batch size "
     "(p50 unless --latency-percentile)"),
    ("--max-size-mb", "max_size_mb", "size on disk in MB (10^6 bytes)"),
)  # fmt: skip


def add_latency_args(parser: argparse.ArgumentParser) -> None:
    """Latency flags shared by validate and bench (see `LatencyConfig`)."""
    group = parser.add_argument_group("latency")
    group.add_argument("--threads", type=int, help="inference threads (default: runtime's)")
    group.add_argument("--runs", type=int, help="timed runs after warm-up (default 200)")
    group.add_argument(
        "--time-budget", type=float, metavar="SECONDS", help="time for this long instead of --runs"
    )
    group.add_argument(
        "--warmup", type=int, metavar="N", help="max warm-up runs (default 200; stops earlier "
        "once the median of the last 10 runs is stable)",
    )  # fmt: skip
    group.add_argument(
        "--latency-batch-sizes", metavar="N[,N...]", help="batch sizes to time (default 1)"
    )


def latency_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, key in (("threads", "threads"), ("runs", "runs"), ("time_budget", "time_budget_s")):
        if getattr(args, flag, None) is not None:
            out[key] = getattr(args, flag)
    if getattr(args, "warmup", None) is not None:
        out["max_warmup_runs"] = args.warmup
        out["min_warmup_runs"] = min(args.warmup, 5)
    if getattr(args, "latency_batch_sizes", None):
        try:
            out["batch_sizes"] = [int(v) for v in args.latency_batch_sizes.split(",")]
        except ValueError as exc:
            raise DataError(
                f"--latency-batch-sizes '{args.latency_batch_sizes}': expected e.g. 1,8,32"
            ) from exc
    return out


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate",
        help="compare artifacts with the float baseline; gate on accuracy, drift, latency, size",
        description=(
            "Run the float baseline and each candidate on evaluation data; report accuracy "
            "(with labels), top-1/top-5 agreement, per-output drift (max/mean abs error, cosine, "
            "SQNR), latency and size; check gates. Writes REPORT.json and REPORT.md with "
            "--report. Unknown --key value options are passed to every backend's load; scope "
            "them as --BACKEND.key value (e.g. --openvino.hint latency) when candidates use "
            "different backends."
        ),
        epilog="Exit codes: 0 all gates pass, 1 a gate failed, 2 usage or input error.",
    )
    parser.add_argument("--baseline", metavar="MODEL", help="float model source: pkg.mod:factory, "
                        "file.py:factory, .pt2, .onnx, pickled module (with --trust-pickle)")  # fmt: skip
    parser.add_argument("--baseline-outputs", metavar="SAVED.npz", type=Path,
                        help="replay baseline outputs saved earlier (e.g. on another machine)")  # fmt: skip
    parser.add_argument("--candidate", action="append", default=[], type=Path, metavar="PATH",
                        help="artifact to validate (.onnx, OpenVINO .xml or dir, engine); repeat")  # fmt: skip
    parser.add_argument("--candidate-backend", action="append", default=[], metavar="NAME",
                        help="backend of the candidates (default: from the path); once, or per candidate")  # fmt: skip
    parser.add_argument("--candidate-outputs", action="append", default=[], type=Path,
                        metavar="SAVED.npz", help="saved outputs to validate as a candidate; repeat")  # fmt: skip
    parser.add_argument("--data", required=True, help="evaluation data (.npz, .npy, folder, "
                        "pkg.mod:callable)")  # fmt: skip
    parser.add_argument("--input", action="append", dest="inputs", metavar="NAME:SHAPE[:DTYPE]",
                        help="model input spec (factories need it unless the data names inputs)")  # fmt: skip
    parser.add_argument("--labels-key", default="labels", help="labels array name (default labels)")
    parser.add_argument("--weights", help="state dict for a factory baseline")
    parser.add_argument("--trust-pickle", action="store_true", help="allow unpickling the model")
    parser.add_argument("--recipe", type=Path, help="take gates/latency from the recipe's "
                        "[validate] section (flags override it)")  # fmt: skip
    parser.add_argument("--report", type=Path, metavar="REPORT.json",
                        help="write the JSON report here and Markdown beside it")  # fmt: skip
    parser.add_argument("--save-outputs", type=Path, metavar="DIR",
                        help="save every runner's outputs as DIR/<label>.npz + .json")  # fmt: skip
    parser.add_argument("--batch-size", type=int, help="accuracy-pass batch size (default 32)")
    parser.add_argument("--max-samples", type=int, help="evaluate at most N samples")
    parser.add_argument("--task", choices=["auto", "classification", "regression"],
                        help="auto (default): 2-D [N, C>=2] outputs are classification logits")  # fmt: skip
    parser.add_argument("--no-latency", action="store_true", help="skip latency measurement")
    gates = parser.add_argument_group("gates (off unless set)")
    for flag, _, text in GATE_FLAGS:
        gates.add_argument(flag, type=float, help=text)
    gates.add_argument("--latency-percentile", type=int, choices=[50, 90, 99],
                       help="percentile --max-latency-ms applies to (default 50)")  # fmt: skip
    add_latency_args(parser)
    parser.set_defaults(func=run, pass_unknown_options=True)
    return parser


def build_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from nnship.validate.commands import read_validate_section
    from nnship.validate.config import ValidateConfig
    from nnship.validate.report import summarize_errors

    base = read_validate_section(args.recipe) if args.recipe else ValidateConfig()
    data = base.model_dump()
    for _, key, _ in GATE_FLAGS:
        if getattr(args, key) is not None:
            data["gates"][key] = getattr(args, key)
    if args.latency_percentile is not None:
        data["gates"]["latency_percentile"] = args.latency_percentile
    data["latency"].update(latency_overrides(args))
    if args.no_latency:
        data["latency"]["enabled"] = False
    for key in ("batch_size", "max_samples", "task"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    try:
        return ValidateConfig.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"Bad validate option: {summarize_errors(exc)}") from exc


def run(args: argparse.Namespace) -> int:
    import logging

    from nnship import api
    from nnship.validate.commands import parse_backend_options
    from nnship.validate.render.markdown import save_with_markdown
    from nnship.validate.render.terminal import print_report

    config = build_config(args)
    report = api.validate(
        args.baseline,
        args.candidate,
        args.data,
        baseline_outputs=args.baseline_outputs,
        candidate_outputs=args.candidate_outputs,
        candidate_backends=args.candidate_backend,
        inputs=args.inputs,
        labels_key=args.labels_key,
        weights=args.weights,
        trust_pickle=args.trust_pickle,
        config=config,
        backend_options=parse_backend_options(getattr(args, "unknown_options", [])),
        save_outputs_dir=args.save_outputs,
    )
    if args.report:
        save_with_markdown(report, args.report)
        logging.getLogger("nnship").info(
            "Report written to %s (+ %s)", args.report, args.report.with_suffix(".md")
        )
    print_report(report)
    return 0 if report.passed else 1
