"""`nnship distill`: train a (pruned) student to reproduce a float teacher."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nnship.cli.options import DataArgs, JsonArgs, ModelSourceArgs, first_invalid_option

_EPILOG = """\
examples:
  nnship distill --teacher my_pkg.models:net --student pruned.pt2 --data train.npz \\
      --input x:1x3x224x224 --epochs 5 -o student.pt2
  nnship distill --teacher net.pt2 --student pruned.pt2 --data train.npz --val-data val.npz \\
      --label-weight 1.0 --checkpoint distill.ckpt --resume -o student.pt2

The data needs no labels: the loss is the KL divergence to the teacher's softened outputs
(temperature T, scaled by T^2). When the data has labels, --label-weight (default 0.5) times the
cross-entropy is added, and the teacher's and the student's accuracy are reported. The best
epoch on the validation split is kept.
"""

TEACHER = ModelSourceArgs(
    source="--teacher",
    required=True,
    source_help="teacher source: pkg.module:factory, file.py:factory, model.pt2, ...",
    input_help="an input of forward() (needed for factory sources; repeatable)",
    factory_arg_help="keyword argument for the teacher's factory (repeatable)",
    weights_flag="--teacher-weights",
    weights_help="state dict loaded into the teacher's factory module",
    trust_pickle_help="allow unpickling (only for files you trust)",
)
DATA = DataArgs(
    "--data", required=True, help="training data (.npy, .npz, folder, pkg.mod:fn); labels optional"
)
JSON = JsonArgs("also write the training history as JSON")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "distill",
        help="knowledge distillation: train a student (e.g. a pruned model) from a teacher",
        description=(
            "Distill a student from a float teacher on (unlabeled) data and write the student "
            "as a .pt2. Shows a progress bar with the loss and top-1 agreement."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    TEACHER.add_to(parser)
    parser.add_argument("--student", required=True, metavar="MODEL",
                        help="student source, typically the .pt2 written by `nnship prune`")  # fmt: skip
    DATA.add_to(parser)
    parser.add_argument("--val-data", metavar="DATA",
                        help="validation data (default: --val-fraction of --data)")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.pt2",
                        help="where to write the distilled student")  # fmt: skip
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=8, help="default 8")
    train.add_argument("--batch-size", type=int, default=32, help="default 32")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    train.add_argument("--schedule", choices=["cosine", "constant", "onecycle"], default="cosine",
                       help="learning-rate schedule (default cosine)")  # fmt: skip
    train.add_argument(
        "--temperature", type=float, default=4.0, help="softmax temperature (default 4)"
    )
    train.add_argument("--output-loss", choices=["kl", "mse"], default="kl",
                       help="kl for logits (default), mse for embeddings/regression")  # fmt: skip
    train.add_argument("--label-weight", type=float, default=0.5,
                       help="weight of cross-entropy on labels, used when --data has labels "
                       "(default 0.5; 0 = teacher only)")  # fmt: skip
    train.add_argument("--feature-layer", action="append", default=[], metavar="NAME",
                       help="also match this layer's output (FitNets; repeatable)")  # fmt: skip
    train.add_argument("--feature-weight", type=float, default=1.0, help="default 1.0")
    train.add_argument("--val-fraction", type=float, default=0.1,
                       help="held-out fraction of --data when no --val-data (default 0.1)")  # fmt: skip
    train.add_argument("--patience", type=int, default=3,
                       help="early stopping: epochs without a better validation loss (default 3, 0 = off)")  # fmt: skip
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument(
        "--max-samples", type=int, metavar="N", help="use at most N samples of --data"
    )
    train.add_argument("--keep-sparsity", action="store_true",
                       help="weights that are zero stay zero (unstructured/2:4 students)")  # fmt: skip
    train.add_argument("--checkpoint", type=Path, metavar="FILE",
                       help="save training state here after every epoch")  # fmt: skip
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def make_distill_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from nnship.compress.config import DistillConfig
    from nnship.core.errors import CompressionError

    try:
        return DistillConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            schedule=args.schedule,
            temperature=args.temperature,
            output_loss=args.output_loss,
            label_weight=args.label_weight,
            feature_layers=args.feature_layer,
            feature_weight=args.feature_weight,
            val_fraction=args.val_fraction,
            patience=args.patience or None,
            seed=args.seed,
            max_samples=args.max_samples,
            checkpoint=str(args.checkpoint) if args.checkpoint else None,
            resume=args.resume,
        )
    except ValidationError as exc:
        raise CompressionError(f"Invalid {first_invalid_option(exc, default='options')}") from None


def run(args: argparse.Namespace) -> int:
    from nnship import api

    result = api.distill(
        args.teacher,
        args.student,
        args.output,
        args.data,
        make_distill_config(args),
        **TEACHER.api_kwargs(args),
        val_data=args.val_data,
        keep_sparsity=args.keep_sparsity,
    )
    report = result.to_dict()
    JSON.write(args, report)
    _print_report(report)
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _print_report(report: dict[str, Any]) -> None:
    print(f"wrote {report['output']}  (student {report['student_params']:,} parameters, "
          f"teacher {report['teacher_params']:,})")  # fmt: skip
    print("  epoch  train loss  val loss  val agreement  val accuracy  lr")
    for h in report["history"]:
        mark = " *" if h["epoch"] == report["best_epoch"] else ""
        print(f"  {h['epoch']:>5}  {h['train_loss']:>10.4f}  {h['val_loss']:>8.4f}  "
              f"{_pct(h['val_agreement']):>13}  {_pct(h.get('val_accuracy')):>12}  "
              f"{h['lr']:.2e}{mark}")  # fmt: skip
    stop = ", stopped early" if report["stopped_early"] else ""
    print(f"  best epoch {report['best_epoch']}{stop}; top-1 agreement with the teacher "
          f"{_pct(report['agreement_before'])} -> {_pct(report['agreement_after'])}")  # fmt: skip
    if report.get("teacher_accuracy") is not None:
        print(f"  validation accuracy: teacher {_pct(report['teacher_accuracy'])}, student "
              f"{_pct(report['accuracy_before'])} -> {_pct(report['accuracy_after'])}")  # fmt: skip
