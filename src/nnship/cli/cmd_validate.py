"""`nnship validate`: the float baseline against candidate artifacts, with gates."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.options import (
    BackendLoadArgs,
    DataArgs,
    ModelSourceArgs,
    TaskMetricArgs,
    ValidateConfigArgs,
)

BASELINE = ModelSourceArgs(
    source="--baseline",
    source_help="float model source: pkg.mod:factory, file.py:factory, .pt2, .onnx, pickled "
    "module (with --trust-pickle)",
    input_help="model input spec (factories need it unless the data names inputs)",
    short_input=False,
    weights_help="state dict for a factory baseline",
    trust_pickle_help="allow unpickling the model",
)
DATA = DataArgs(
    "--data", required=True, help="evaluation data (.npz, .npy, folder, pkg.mod:callable)"
)
SETTINGS = ValidateConfigArgs()
TASK = TaskMetricArgs()
BACKEND_OPTIONS = BackendLoadArgs()


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate",
        help="compare artifacts with the float baseline; gate on accuracy, drift, latency, size",
        description=(
            "Run the float baseline and each candidate on evaluation data; report accuracy "
            "(with labels), top-1/top-5 agreement, per-output drift (max/mean abs error, cosine, "
            "SQNR), the task metric (--metric: detection F1, decoded strings, map IoU, pooled "
            "embeddings, signals, a function of yours), latency and size; check gates. Writes "
            "REPORT.json and REPORT.md with "
            "--report. Unknown --key value options are passed to every backend's load; scope "
            "them as --BACKEND.key value (e.g. --openvino.hint latency) when candidates use "
            "different backends."
        ),
        epilog="Exit codes: 0 all gates pass, 1 a gate failed, 2 usage or input error.",
    )
    BASELINE.add_to(parser)
    parser.add_argument("--baseline-outputs", metavar="SAVED.npz", type=Path,
                        help="replay baseline outputs saved earlier (e.g. on another machine)")  # fmt: skip
    parser.add_argument("--candidate", action="append", default=[], type=Path, metavar="PATH",
                        help="artifact to validate (.onnx, OpenVINO .xml or dir, engine); repeat")  # fmt: skip
    parser.add_argument("--candidate-backend", action="append", default=[], metavar="NAME",
                        help="backend of the candidates (default: from the path); once, or per candidate")  # fmt: skip
    parser.add_argument("--candidate-outputs", action="append", default=[], type=Path,
                        metavar="SAVED.npz", help="saved outputs to validate as a candidate; repeat")  # fmt: skip
    DATA.add_to(parser)
    parser.add_argument("--labels-key", default="labels", help="labels array name (default labels)")
    parser.add_argument("--report", type=Path, metavar="REPORT.json",
                        help="write the JSON report here and Markdown beside it")  # fmt: skip
    parser.add_argument("--save-outputs", type=Path, metavar="DIR",
                        help="save every runner's outputs as DIR/<label>.npz + .json")  # fmt: skip
    SETTINGS.add_to(parser)
    TASK.add_to(parser)
    BACKEND_OPTIONS.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import logging

    from nnship import api
    from nnship.validate.render.markdown import save_with_markdown
    from nnship.validate.render.terminal import print_report

    config = SETTINGS.config(args)
    report = api.validate(
        args.baseline,
        args.candidate,
        args.data,
        baseline_outputs=args.baseline_outputs,
        candidate_outputs=args.candidate_outputs,
        candidate_backends=args.candidate_backend,
        labels_key=args.labels_key,
        **BASELINE.api_kwargs(args),
        config=config,
        backend_options=BACKEND_OPTIONS.options(args),
        save_outputs_dir=args.save_outputs,
        metric=TASK.metric_spec(args),
        task_gates=TASK.task_gates(args),
        metric_base_dir=TASK.base_dir(args, args.recipe),
    )
    if args.report:
        save_with_markdown(report, args.report)
        logging.getLogger("nnship").info(
            "Report written to %s (+ %s)", args.report, args.report.with_suffix(".md")
        )
    print_report(report)
    return 0 if report.passed else 1
