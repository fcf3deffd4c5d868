"""`nnship explain`: which layers of a quantized (or FP16) model cause its drift."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.options import DataArgs, JsonArgs

_EPILOG = """\
examples:
  nnship explain model.onnx model.int8.onnx --data calib.npz
  nnship explain model.onnx model.fp16.onnx --data eval.npz --top 30 --json drift.json
  nnship explain model.onnx model.int8.onnx --data calib.npz --report build/report.json

Layers are ranked by the noise each adds on its own (the quantized layer run on the float
model's activations): "added SQNR dB", lower is worse. Layers far below the median are
suggested for `nnship quantize --exclude`.
"""

DATA = DataArgs(
    "--data",
    required=True,
    help="sample inputs (.npy, .npz, folder, image folder, pkg.mod:fn)",
    limit_flag="--max-samples",
    limit_help="samples to run (default 32)",
    limit_default=32,
)
JSON = JsonArgs("write the full ranking as JSON (atomically)")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain",
        help="rank the layers of a quantized model by the drift each adds (per-layer SQNR)",
        description=(
            "Run the float model and the quantized (or FP16) model side by side on sample data "
            "with their intermediate tensors exposed, match the tensors (by name, through Q/DQ "
            "pairs, by node name, by op order), and rank the layers by the noise each adds. "
            "Layers are named by ONNX node and, for models exported from PyTorch, by module."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("float_model", type=Path, metavar="MODEL.onnx",
                        help="the float ONNX model the artifact was made from")  # fmt: skip
    parser.add_argument("artifact", type=Path, metavar="ARTIFACT.onnx",
                        help="the quantized / FP16 ONNX model to explain")  # fmt: skip
    DATA.add_to(parser)
    parser.add_argument("--batch-size", type=int, default=8, metavar="N",
                        help="samples per run (default 8)")  # fmt: skip
    parser.add_argument("--top", type=int, default=15, metavar="N",
                        help="layers to print (default 15; --json keeps all)")  # fmt: skip
    parser.add_argument("--label", metavar="LABEL",
                        help="artifact label (default onnxruntime/<precision>, as in reports)")  # fmt: skip
    parser.add_argument("--min-coverage", type=float, default=0.25, metavar="F",
                        help="fraction of float tensors that must be found in the artifact "
                        "(default 0.25); below it the models are taken not to correspond")  # fmt: skip
    parser.add_argument("--threads", type=int, metavar="N",
                        help="ONNX Runtime threads (default: its own choice)")  # fmt: skip
    JSON.add_to(parser)
    parser.add_argument("--markdown", type=Path, metavar="OUT.md",
                        help="write the printed table as Markdown (atomically)")  # fmt: skip
    parser.add_argument("--report", type=Path, metavar="REPORT.json",
                        help="add the ranking to this validation report's layer_drift (the "
                        "HTML report then draws it)")  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.core.fileio import write_text_atomic

    result = api.explain(
        args.float_model,
        args.artifact,
        args.data,
        max_samples=args.max_samples,
        batch_size=args.batch_size,
        label=args.label,
        min_coverage=args.min_coverage,
        threads=args.threads,
        attach_to=args.report,
    )
    markdown = result.to_markdown(top=args.top)
    JSON.write(args, result.to_dict())
    if args.markdown:
        write_text_atomic(args.markdown, markdown)
    print(markdown, end="")
    return 0
