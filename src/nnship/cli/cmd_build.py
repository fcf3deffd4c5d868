"""`nnship build RECIPE`: run the whole pipeline a recipe describes and print its report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnship.cli.options import BuildReportArgs, GateArgs, RecipeOverrideArgs, TaskMetricArgs

SETTINGS = RecipeOverrideArgs(
    "override a recipe key, e.g. --set validate.gates.min_cosine=0.999 "
    "(the value is read as TOML; repeatable)"
)
GATES = GateArgs("gates (override [validate.gates])", wording="row")
TASK_GATES = TaskMetricArgs(metric=False)
REPORT = BuildReportArgs()


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
            "  nnship build recipe.toml --task-gate 'det_f1>=0.95'\n"
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
    SETTINGS.add_to(parser)
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
    REPORT.add_to(parser)
    GATES.add_to(parser)
    TASK_GATES.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def collect_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`--set`, gate and `--task-gate` flags as dotted recipe keys (gate flags win over
    `--set`)."""
    gates = {f"validate.gates.{name}": value for name, value in GATES.values(args).items()}
    return {**SETTINGS.overrides(args), **gates, **TASK_GATES.overrides(args)}


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
    return REPORT.finish(result, args)
