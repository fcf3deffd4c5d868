"""`nnship prune`: structured channel pruning or unstructured/2:4 sparsity of a PyTorch model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nnship.cli.options import DataArgs, JsonArgs, ModelSourceArgs, first_invalid_option

_EPILOG = """\
examples:
  nnship prune my_pkg.models:net --ratio 0.5 --importance l1 --input x:1x3x224x224 -o pruned.pt2
  nnship prune my_pkg.models:net --ratio 0.5 --importance taylor --data train.npz \\
      --input x:1x3x224x224 -o pruned.pt2
  nnship prune model.pt2 --method 2:4 -o sparse.pt2
  nnship prune net.py:build --ratio 0.6 --scope global --protect head --layer-ratio 'stem.*=0.2' \\
      --input x:1x3x64x64 --eval val.npz -o pruned.pt2 --json prune.json

ratio: structured = fraction of channels removed from every prunable group (before rounding
to --round-to); unstructured = fraction of weights zeroed. Parameter and FLOP ratios are
measured and printed. Zeros from unstructured/2:4 do not speed up dense CPU kernels.

With --data (labels not needed), BatchNorm running statistics are re-estimated on it after
pruning: without that a pruned CNN is often near chance accuracy until it is distilled.
"""

MODEL_SOURCE = ModelSourceArgs(
    source_help="model source: pkg.module:factory, file.py:factory, model.pt2, ...",
    input_help="an input of forward(), e.g. x:1x3x224x224 (repeatable)",
    factory_arg_help="keyword argument for the factory, VALUE read as TOML (repeatable)",
)
DATA = DataArgs(
    "--data",
    help="data (.npy, .npz, folder, pkg.mod:fn) to recalibrate BatchNorm statistics after "
    "pruning and for Taylor importance (labels used if present)",
    limit_flag="--data-limit",
    limit_help="samples used for importance and recalibration (default 256)",
    limit_default=256,
)
JSON = JsonArgs("also write the prune report as JSON")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "prune",
        help="prune a PyTorch model: remove channels (smaller, faster) or add sparsity",
        description=(
            "Prune a PyTorch model and write it as a .pt2. Structured pruning traces the model, "
            "groups coupled layers (BatchNorm, residual adds, depthwise convs, concat, "
            "flatten->Linear) and removes the least important channels, giving a smaller dense "
            "model. Unstructured and 2:4 pruning zero weights in place."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    MODEL_SOURCE.add_to(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.pt2",
                        help="where to write the pruned model (torch.export program)")  # fmt: skip
    how = parser.add_argument_group("pruning")
    how.add_argument("--method", choices=["structured", "unstructured", "2:4"],
                     default="structured", help="default structured")  # fmt: skip
    how.add_argument("--ratio", type=float, default=0.5,
                     help="fraction in [0, 1) of channels (structured) or weights to remove "
                     "(default 0.5)")  # fmt: skip
    how.add_argument("--importance", choices=["l1", "l2", "bn_scale", "taylor"], default="l1",
                     help="channel importance (default l1; taylor needs --data)")  # fmt: skip
    how.add_argument("--scope", choices=["uniform", "global", "sensitivity"], default="uniform",
                     help="same ratio in every group/layer, one global threshold, or (unstructured) "
                          "spread by measured layer sensitivity (default uniform)")  # fmt: skip
    how.add_argument("--layer-ratio", action="append", default=[], metavar="NAME=RATIO",
                     help="per-layer ratio override; NAME may be a glob (repeatable)")  # fmt: skip
    how.add_argument("--protect", action="append", default=None, metavar="NAME",
                     help="never prune this layer's outputs (repeatable; default: the first conv "
                     "and the classifier head)")  # fmt: skip
    how.add_argument("--no-protect", action="store_true",
                     help="protect no layer (not even the defaults)")  # fmt: skip
    how.add_argument("--round-to", type=int, default=8,
                     help="round kept channel counts to a multiple of this (default 8)")  # fmt: skip
    how.add_argument("--steps", type=int, default=1,
                     help="prune in this many equal steps (default 1)")  # fmt: skip
    data = parser.add_argument_group("data")
    DATA.add_to(data)
    data.add_argument("--no-recalibrate", action="store_true",
                      help="keep the BatchNorm statistics of the unpruned model even with --data")  # fmt: skip
    data.add_argument("--eval", metavar="DATA",
                      help="report top-1 accuracy (labels) and agreement before/after on this data")  # fmt: skip
    parser.add_argument("--latency-runs", type=int, default=30, metavar="N",
                        help="interleaved torch CPU latency runs at batch 1 (default 30, 0 = skip)")  # fmt: skip
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def _layer_ratios(items: list[str]) -> dict[str, float]:
    from nnship.core.errors import CompressionError

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise CompressionError(
                f"Bad --layer-ratio '{item}': expected NAME=RATIO, e.g. stem.0=0.2"
            )
    return out


def make_prune_config(args: argparse.Namespace) -> Any:
    """A `PruneConfig` from the command line; pydantic errors become `CompressionError`s naming
    the option."""
    from pydantic import ValidationError

    from nnship.compress.config import PruneConfig
    from nnship.core.errors import CompressionError

    protect = [] if args.no_protect else args.protect
    try:
        return PruneConfig(
            method=args.method,
            ratio=args.ratio,
            importance=args.importance,
            scope=args.scope,
            layer_ratios=_layer_ratios(args.layer_ratio),
            protect=protect,
            round_to=args.round_to,
            steps=args.steps,
            max_samples=args.data_limit,
            recalibrate_bn=not getattr(args, "no_recalibrate", False),
        )
    except ValidationError as exc:
        raise CompressionError(f"Invalid {first_invalid_option(exc, default='options')}") from None


def run(args: argparse.Namespace) -> int:
    from nnship import api

    result = api.prune(
        args.model,
        args.output,
        make_prune_config(args),
        **MODEL_SOURCE.api_kwargs(args),
        data=args.data,
        eval_data=args.eval,
        latency_runs=args.latency_runs,
    )
    report = result.to_dict()
    JSON.write(args, report)
    _print_report(report, verbose=getattr(args, "verbose", 0) > 0)
    return 0


def _print_report(report: dict[str, Any], *, verbose: bool) -> None:
    cfg = report["config"]
    print(f"wrote {report['output']}  ({cfg['method']}, ratio {cfg['ratio']}, "
          f"importance {cfg['importance']}, scope {cfg['scope']})")  # fmt: skip
    print(f"  parameters  {report['params_before']:,} -> {report['params_after']:,} "
          f"(x{report['param_ratio']:.3f})")  # fmt: skip
    if cfg["method"] != "structured":
        print(f"  non-zero    {report['nonzero_before']:,} -> {report['nonzero_after']:,} "
              f"(x{report['nonzero_ratio']:.3f})")  # fmt: skip
    print(f"  FLOPs       {report['flops_before']:,} -> {report['flops_after']:,} "
          f"(x{report['flops_ratio']:.3f}, batch of the example input)")  # fmt: skip
    if "torch_latency_ms" in report:
        ms = report["torch_latency_ms"]
        note = "" if cfg["method"] == "structured" else " (zeros do not speed up dense CPU kernels)"
        print(f"  latency     {ms['original']:.3f} ms -> {ms['pruned']:.3f} ms torch CPU batch 1 "
              f"(x{ms['pruned'] / max(ms['original'], 1e-9):.2f}){note}")  # fmt: skip
    if report.get("recalibrated_bn"):
        print(f"  BatchNorm   {len(report['recalibrated_bn'])} layers recalibrated on the data")
    elif report.get("bn_divergence"):
        before, after = report["bn_divergence"]
        print(f"  BatchNorm   recalibration rejected: it moved the outputs away from the unpruned "
              f"model's on the data (divergence {before:.4g} -> {after:.4g}); statistics kept")  # fmt: skip
    elif report.get("stale_batchnorm"):
        print("  BatchNorm   statistics of the unpruned model kept (no --data): expect low "
              "accuracy until `nnship distill`")  # fmt: skip
    for name, metrics in report.get("eval", {}).items():
        text = ", ".join(f"{k} {v:.2%}" for k, v in metrics.items())
        print(f"  eval        {name}: {text}")
    if report["groups"]:
        changed = [g for g in report["groups"] if g["channels_after"] != g["channels_before"]]
        print(f"  groups      {len(changed)} of {len(report['groups'])} prunable groups shrunk, "
              f"{report['channel_ratio']:.1%} of their channels removed")  # fmt: skip
        for g in report["groups"] if verbose else []:
            print(f"    {g['name']:<40} {g['channels_before']:>5} -> {g['channels_after']}")
    if report["layer_sparsity"] and verbose:
        for name, s in report["layer_sparsity"].items():
            print(f"    {name:<40} sparsity {s:.1%}")
    if report["skipped"]:
        print(f"  kept whole  {len(report['skipped'])} (protected: {', '.join(report['protected']) or 'none'})"
              + ("" if verbose else "; -v lists why"))  # fmt: skip
        for name, reason in report["skipped"].items() if verbose else []:
            print(f"    {name:<40} {reason}")
