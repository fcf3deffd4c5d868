"""The Python API: one typed function per CLI command; the CLI is a thin layer over it.

Every `nnship <verb>` parses its arguments, calls exactly one function here and renders what
it returns; every result has `to_dict()` (JSON). Stage modules are imported inside the
functions, so `import nnship.api` imports neither torch nor any backend runtime, and only the
stages a call uses must be installed (optional runtimes raise `MissingDependencyError` naming
the pip extra). See docs/api.md.

    from nnship import api
    result = api.build("examples/demo/recipe.toml")
    print(result.exit_code, result.report_path)
"""

from __future__ import annotations

from nnship.api.backends import check, compile
from nnship.api.bundle import bundle, bundle_verify
from nnship.api.models import distill, export, prune
from nnship.api.pipeline import build, demo
from nnship.api.quantization import calibrate, quantize
from nnship.api.results import CheckResult, DistillReport, PruneReport, RenderedReport
from nnship.api.runtime import RunResult, run_bundle
from nnship.api.tune import tune, tune_promote, tune_show
from nnship.api.validation import bench, compare, explain, report, validate
from nnship.bundle.verify import VerifyResult
from nnship.bundle.writer import BundleResult
from nnship.pipeline.result import BuildResult
from nnship.recipe import Recipe, load_recipe
from nnship.tune.result import PromotedRecipe, TuneResult, TuneSummary

COMMANDS = {
    "bench": bench,
    "build": build,
    "bundle": bundle,
    "calibrate": calibrate,
    "check": check,
    "compare": compare,
    "compile": compile,
    "demo": demo,
    "distill": distill,
    "explain": explain,
    "export": export,
    "prune": prune,
    "quantize": quantize,
    "report": report,
    "tune": tune,
    "run": run_bundle,
    "validate": validate,
}
"""CLI verb -> the API function it calls (named like the verb, except `run` -> `run_bundle`)."""

SUBCOMMANDS = {
    "bundle verify": bundle_verify,
    "tune show": tune_show,
    "tune promote": tune_promote,
}
"""Second-level verbs (`nnship bundle verify DIST`, `nnship tune show`) -> the API function each calls."""

__all__ = [
    "COMMANDS",
    "BuildResult",
    "BundleResult",
    "CheckResult",
    "DistillReport",
    "PromotedRecipe",
    "PruneReport",
    "Recipe",
    "RenderedReport",
    "RunResult",
    "SUBCOMMANDS",
    "TuneResult",
    "TuneSummary",
    "VerifyResult",
    "bench",
    "build",
    "bundle",
    "bundle_verify",
    "calibrate",
    "check",
    "compare",
    "compile",
    "demo",
    "distill",
    "explain",
    "export",
    "load_recipe",
    "prune",
    "quantize",
    "report",
    "tune",
    "tune_promote",
    "tune_show",
    "run_bundle",
    "validate",
]
