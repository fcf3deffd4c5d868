"""`nnship demo`: train (first use) and build the demo model, then print its report."""

from __future__ import annotations

import argparse
from typing import Any

from nnship.cli.options import BuildReportArgs

REPORT = BuildReportArgs()


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="build the demo model (a ResNet-style CNN on scikit-learn's digits) and print its "
        "report",
        description=(
            "Train a ResNet-style CNN (64x64 RGB) on scikit-learn's handwritten digits on first "
            "use (about half a minute on two cores; cached under a key of its settings in "
            "$NNSHIP_CACHE_DIR/demo, default ~/.cache/nnship/demo), then build "
            "examples/demo/recipe.toml with everything this installation supports (prune, "
            "distill, export, INT8 quantization, ONNX Runtime and OpenVINO, validation, gates) "
            "and write the report as JSON, Markdown and HTML; end with a bundle (dist/demo and "
            "dist/demo.tar.gz) loaded and smoke-tested with nnship.runtime."
        ),
        epilog="exit codes: 0 all gates pass, 1 a gate failed, 2 usage or input error",
    )
    parser.add_argument(
        "-o", "--output-dir", help="build folder (default: build/demo in the working directory)"
    )
    parser.add_argument(
        "--cache-dir",
        help="cache folder for the trained model and data (default: $NNSHIP_CACHE_DIR or "
        "~/.cache/nnship)",
    )
    parser.add_argument(
        "--dist",
        help="bundle folder the demo ends with (default: dist/demo in the working directory)",
    )
    parser.add_argument("--recipe", help="build this recipe instead of examples/demo/recipe.toml")
    parser.add_argument(
        "--no-reuse", action="store_true", help="recompute every stage of the build"
    )
    REPORT.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.demo import html_report_path

    result = api.demo(
        cache=args.cache_dir,
        output_dir=args.output_dir,
        recipe=args.recipe,
        reuse=not args.no_reuse,
        bundle_dir=args.dist,
    )
    code = REPORT.finish(result, args)
    html = html_report_path(result)
    if html is not None and not getattr(args, "quiet", False):
        print(f"html report: {html}")
    if result.bundle_check is not None and not getattr(args, "quiet", False):
        print(f"bundle loaded with nnship.runtime: {result.bundle_check.summary()}")
    if args.recipe is None and result.bundle_path and not getattr(args, "quiet", False):
        print(
            f"next: nnship run {result.bundle_path} --image digit.png | "
            "nnship tune examples/demo/recipe.toml (the recipe's [tune] grid; docs/tune.md)"
        )
    return code
