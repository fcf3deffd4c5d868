"""`nnship tune RECIPE`: search compression settings under an accuracy budget.

`nnship tune show DIR` and `nnship tune promote DIR --trial N -o FILE` are the two sub-verbs;
each calls one API function (`api.tune_show`, `api.tune_promote`), `nnship tune RECIPE` calls
`api.tune`.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from nnship.cli.options import GateArgs, JsonArgs, RecipeOverrideArgs
from nnship.core.errors import RecipeError

SUB_VERBS = ("show", "promote")
SETTINGS = RecipeOverrideArgs("override a recipe key (value read as TOML; repeatable)")
CONSTRAINTS = GateArgs("constraints (override [tune] constraints)", wording="constraint")
JSON = JsonArgs("also write the result as JSON here")


def parse_duration(text: str) -> float:
    """`2h`, `30m`, `90s`, `1h30m` or plain seconds -> seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", value)
    if not value or not match or not any(match.groups()):
        raise RecipeError(f"--timeout '{text}': expected a duration such as 2h, 30m, 90s or 1h30m")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tune",
        help="search compression settings under an accuracy budget (Pareto front per backend)",
        description=(
            "Search the recipe's [tune.space] (prune ratio, distillation, quantization method, "
            "precisions, backends, any recipe key) for the fastest and smallest artifacts that "
            "meet the [tune] constraints (validate gates such as max_top1_drop), one build per "
            "trial on Optuna (TPE, random, grid or NSGA-II). Trials share a stage cache, so a "
            "shared prefix of settings is computed once. Writes study.db, trials.jsonl (every "
            "finished trial), pareto.json and pareto.md into the tune folder.\n\n"
            "  nnship tune show DIR [--html FILE]       print the fronts per backend/precision\n"
            "  nnship tune promote DIR --trial N -o F   write trial N as a plain recipe"
        ),
        epilog=(
            "examples:\n"
            "  nnship tune recipe.toml --trials 40 --sampler tpe --max-top1-drop 1.0 -o build/tune\n"
            "  nnship tune recipe.toml --sampler grid\n"
            "  nnship tune recipe.toml --sampler random --trials 20 --seed 3 --timeout 2h\n"
            "  nnship tune recipe.toml -o build/tune --resume      # continue a killed run\n"
            "  nnship tune recipe.toml --storage postgresql://user@db/nnship --study v3  # each worker\n"
            "  nnship tune show build/tune\n"
            "  nnship tune promote build/tune --trial 17 -o recipe.best.toml\n\n"
            "exit codes: 0 a feasible point was found, 1 no trial met the constraints (pareto.json "
            "'relaxed' names the closest), 2 usage or input error"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "recipe", metavar="RECIPE | show | promote", help="recipe TOML with a [tune] section"
    )
    parser.add_argument("folder", nargs="?", metavar="DIR", help="tune folder (show, promote)")
    parser.add_argument(
        "-o",
        "--output",
        dest="output",
        help="tune folder (default build/<name>-tune); for promote: the recipe file to write",
    )
    search = parser.add_argument_group("search (override [tune])")
    search.add_argument("--trials", type=int, metavar="N", help="number of trials")
    search.add_argument(
        "--sampler", choices=("tpe", "random", "grid", "nsga2"), help="the Optuna sampler"
    )
    search.add_argument("--seed", type=int, help="the sampler's seed (same seed, same trials)")
    search.add_argument("--timeout", metavar="DURATION", help="wall-time budget: 2h, 30m, 90s")
    SETTINGS.add_to(search)
    CONSTRAINTS.add_to(parser)
    where = parser.add_argument_group("study and storage")
    where.add_argument("--cache", metavar="DIR", help="stage cache (default <tune folder>/cache)")
    where.add_argument(
        "--storage", metavar="URL", help="Optuna storage URL (default <tune folder>/study.db)"
    )
    where.add_argument("--study", metavar="NAME", help="study name (default: the recipe name)")
    where.add_argument("--resume", action="store_true", help="continue the study in the folder")
    where.add_argument(
        "--force", action="store_true", help="start a new study even if the folder holds one"
    )
    sub = parser.add_argument_group("show / promote")
    sub.add_argument("--html", metavar="FILE", help="show: also write the HTML report")
    sub.add_argument("--trial", type=int, metavar="N", help="promote: the trial to promote")
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api

    if args.recipe in SUB_VERBS:
        return _run_show(args) if args.recipe == "show" else _run_promote(args)
    if args.folder is not None:
        raise RecipeError(f"unexpected argument '{args.folder}' (did you mean 'tune show'?)")
    constraints = CONSTRAINTS.values(args)
    result = api.tune(
        args.recipe,
        output_dir=args.output,
        overrides=SETTINGS.overrides(args),
        trials=args.trials,
        sampler=args.sampler,
        seed=args.seed,
        timeout_s=parse_duration(args.timeout) if args.timeout else None,
        constraints=constraints or None,
        storage=args.storage,
        study=args.study,
        cache=args.cache,
        resume=args.resume,
        force=args.force,
        quiet=bool(getattr(args, "quiet", False)),
    )
    JSON.write(args, result.to_dict(), sort_keys=False)
    from nnship.tune.render import print_fronts

    print_fronts(result.pareto, result.records)
    print(
        f"tune: {result.tune_dir} ({len(result.ran)} trial(s) run now, stopped by {result.stopped_by})"
    )
    print(f"pareto: {result.pareto_path} (+ pareto.md)")
    if not result.feasible:
        print(
            "nnship: no trial met the constraints (see 'relaxed' in pareto.json)", file=sys.stderr
        )
    return result.exit_code


def _folder(args: argparse.Namespace) -> str:
    if not args.folder:
        raise RecipeError(f"nnship tune {args.recipe}: give the tune folder, e.g. build/tune")
    return str(args.folder)


def _run_show(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.tune.render import print_fronts

    summary = api.tune_show(_folder(args), html=args.html)
    JSON.write(args, summary.to_dict(), sort_keys=False)
    print_fronts(summary.pareto, summary.records)
    if summary.html_path:
        print(f"html: {summary.html_path}")
    return 0


def _run_promote(args: argparse.Namespace) -> int:
    from nnship import api

    if args.trial is None or not args.output:
        raise RecipeError(
            "nnship tune promote DIR --trial N -o recipe.best.toml: give --trial and -o"
        )
    promoted = api.tune_promote(_folder(args), trial=args.trial, output=args.output)
    JSON.write(args, promoted.to_dict(), sort_keys=False)
    print(
        f"recipe of trial {promoted.trial}: {promoted.path} (build it with: nnship build {promoted.path})"
    )
    return 0
