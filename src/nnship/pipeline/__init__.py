"""`nnship build`: the whole pipeline a recipe describes, in one call.

load model -> [prune -> distill] -> export -> [calibrate once -> quantize per precision]
-> compile per backend x precision -> validate every artifact against the float baseline on the
same evaluation data -> report (JSON + Markdown in `<build>/report/`) -> gates -> exit code.

Each stage writes into its own folder of the build directory
(`export/`, `compress/`, `calibration/`, `quantize/`, `backends/<backend>/`, `report/`) through
atomic writes, and records a stamp of its inputs' hashes; a stage whose inputs match a finished
run is reused (see `nnship.stages.cache`). Stage modules are imported lazily, so a build only
needs the stages its recipe uses.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nnship.core.fileio import ensure_writable_dir
from nnship.pipeline.result import BuildResult
from nnship.recipe import Recipe, apply_overrides, load_recipe

log = logging.getLogger(__name__)

__all__ = ["BuildResult", "build", "clean_build_dir"]

CACHE_DIR_NAME = "cache"
"""The stage cache's folder inside the build folder, unless `cache` names another."""
STAGE_DIRS = ("compress", "export", "calibration", "quantize", "backends", "report", CACHE_DIR_NAME)


def build(
    recipe: Recipe | str | Path,
    *,
    output_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    reuse: bool = True,
    cache: str | Path | None = None,
    on_distill_epoch: Callable[..., None] | None = None,
    baseline_cache: bool = False,
) -> BuildResult:
    """Run the pipeline a recipe describes and return its report, artifacts and exit code.

    `recipe` is a `Recipe` or the path of a recipe TOML file; `overrides` maps dotted recipe
    keys to values (`{"validate.gates.max_top1_drop": 1.0}`) and is applied before validation.
    `output_dir` overrides the recipe's build folder (default `build/<name>`). With
    `reuse=False` every stage is recomputed even when a finished identical run exists (and the
    stage cache is refreshed). `cache` is the stage cache folder; several builds may share one,
    so a stage whose inputs hash the same is computed once. Defaults to `<build folder>/cache`.
    `on_distill_epoch(stats, result)` is called after each distillation epoch and may raise
    to abandon the build (the tuner's early stop); `baseline_cache=True` reuses the float
    baseline's evaluation outputs from the stage cache (its row then has no latency).
    A failed gate is not an exception: it gives `exit_code` 1. Input errors raise
    `NnshipError` subclasses; nothing half-written is left behind.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides=overrides)
    elif overrides:
        recipe = apply_overrides(recipe, overrides)
    out = recipe.resolved_output_dir(output_dir)
    existing = ({out} | set(out.rglob("*"))) if out.exists() else set()
    ensure_writable_dir(out)
    from nnship.pipeline.run import run_pipeline
    from nnship.stages.cache import StageCache
    from nnship.stages.context import StageContext

    cache_root = Path(cache).expanduser() if cache is not None else out / CACHE_DIR_NAME
    ctx = StageContext(
        recipe,
        out.absolute(),
        StageCache(cache_root),
        reuse=reuse,
        on_distill_epoch=on_distill_epoch,
        baseline_cache=baseline_cache,
    )
    try:
        with _deterministic(recipe.seed), _on_sys_path(recipe.base_dir):
            return run_pipeline(ctx)
    except BaseException:
        _remove_empty_dirs(out, keep=existing)
        raise


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch and ask torch for deterministic kernels (where it has them
    cheaply: `warn_only`), restoring torch's previous setting afterwards."""
    import torch

    from nnship.models.train import seed_everything

    seed_everything(seed)
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


@contextlib.contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    """Put the recipe's folder first on `sys.path` for the build, so `my_pkg.models:net` next
    to the recipe imports the way it would from a script in that folder."""
    entry = str(directory)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _remove_empty_dirs(root: Path, *, keep: set[Path]) -> None:
    """After a failure, remove the stage folders this build created and left empty."""
    if not root.exists():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path not in keep and not any(path.iterdir()):
            with contextlib.suppress(OSError):
                path.rmdir()
    if root not in keep and root.is_dir() and not any(root.iterdir()):
        with contextlib.suppress(OSError):
            root.rmdir()


def clean_build_dir(out: Path) -> None:
    """Remove a build folder's stage outputs (used by `nnship build --clean`)."""
    for name in STAGE_DIRS:
        target = Path(out) / name
        if target.exists():
            shutil.rmtree(target)
