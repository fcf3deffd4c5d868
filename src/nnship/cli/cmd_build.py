"""`nnship build RECIPE`: run the whole pipeline a recipe describes and print its report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# CLI gate flags -> [validate.gates] keys; values are the help text (units included).
GATE_FLAGS = {
    "max_top1_drop": "fail a row whose top-1 drop exceeds this many percentage points",
    "min_top1_agreement": "fail a row whose top-1 agreement with the baseline is below this (%%)",
    "min_top5_agreement": "fail a row whose top-5 agreement is below this (%%)",
    "min_cosine": "fail a row whose mean cosine similarity to the baseline is below this",
    "min_sqnr_db": "fail a row whose SQNR is below this (dB)",
    "max_abs_error": "fail a row whose largest absolute error exceeds this",
    "max_latency_ms": "fail a row whose p50 latency exceeds this (milliseconds)",
    "max_size_mb": "fail a row whose size on disk exceeds this (MB, 10**6 bytes)",
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "build",
        help="run a recipe: export, quantize, compile, validate, report",
        description=(
            "Run the pipeline a recipe describes: load the model, [prune, distill], export to "
            "ONNX, [calibrate and quantize], compile for each backend, validate every artifact "
            "against the float baseline, write the report to <build>/report/ and apply the "
            "gates. Stages whose inputs did not change since the last build are reused."
        ),
        epilog=(
            "examples:\n"
            "  nnship build examples/demo/recipe.toml\n"
            "  nnship build recipe.toml --max-top1-drop 1.0 -o build/ci\n"
            "  nnship build recipe.toml --set quantize.precisions='[\"int8\"]' --set seed=1\n"
            "  nnship build recipe.toml --print-recipe json\n\n"
            "exit codes: 0 all gates pass, 1 a gate failed, 2 usage or input error"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="recipe TOML file (paths in it are relative to it)")
    parser.add_argument(
        "-o",
        "--output-dir",
        help="build folder (default: the recipe's output_dir, else build/<name>)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set validate.gates.min_cosine=0.999 "
        "(the value is read as TOML; repeatable)",
    )
    parser.add_argument(
        "--print-recipe",
        nargs="?",
        const="toml",
        choices=("toml", "json"),
        help="print the fully resolved recipe with every default (TOML or JSON) and exit",
    )
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="recompute every stage even if a finished identical run exists",
    )
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="stage cache folder, shareable between builds (default: <build folder>/cache)",
    )
    parser.add_argument("--json", dest="json_out", help="also write the report JSON here")
    gates = parser.add_argument_group("gates (override [validate.gates])")
    for name, text in GATE_FLAGS.items():
        gates.add_argument(
            f"--{name.replace('_', '-')}", dest=f"gate_{name}", type=float, metavar="X", help=text
        )
    parser.set_defaults(func=run)
    return parser


def collect_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`--set` and gate flags as dotted recipe keys (gate flags win over `--set`)."""
    from nnship.recipe import parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    for name in GATE_FLAGS:
        value = getattr(args, f"gate_{name}", None)
        if value is not None:
            overrides[f"validate.gates.{name}"] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.recipe import load_recipe, recipe_to_toml

    overrides = collect_overrides(args)
    if args.print_recipe:
        recipe = load_recipe(args.recipe, overrides=overrides, check_files=False)
        if args.print_recipe == "json":
            print(json.dumps(recipe.to_dict(), indent=2))
        else:
            print(recipe_to_toml(recipe), end="")
        return 0  # printing the recipe runs no stage: no API call
    result = api.build(
        args.recipe,
        output_dir=args.output_dir,
        overrides=overrides,
        reuse=not args.no_reuse,
        cache=args.cache,
    )
    return finish(result, args)


def finish(result: Any, args: argparse.Namespace) -> int:
    """Print the report and where things are, write `--json`, return the exit code."""
    from nnship.core.fileio import write_text_atomic
    from nnship.validate import print_report

    print_report(result.report)
    if getattr(args, "json_out", None):
        write_text_atomic(args.json_out, result.report.to_json())
    if not getattr(args, "quiet", False):
        print(f"report: {result.report_path} (+ report.md)")
        for artifact in result.artifacts:
            print(f"artifact {artifact.label}: {artifact.path}")
        if getattr(result, "bundle_path", None):
            print(f"bundle: {result.bundle_path} (check it with: nnship bundle verify)")
    failed = result.report.failed_gates
    if failed:
        first = failed[0]
        print(
            f"nnship: {len(failed)} gate check(s) failed, first: {first.gate} on {first.row} "
            f"(value {first.value}, threshold {first.threshold})",
            file=sys.stderr,
        )
    return result.exit_code
