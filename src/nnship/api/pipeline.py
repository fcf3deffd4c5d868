"""`nnship build` and `nnship demo`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnship.pipeline.result import BuildResult
from nnship.recipe import Recipe


def build(
    recipe: Recipe | str | Path,
    *,
    output_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    reuse: bool = True,
    cache: str | Path | None = None,
) -> BuildResult:
    """`nnship build`: run the pipeline a recipe describes (a `Recipe` or a TOML path).

    `overrides` maps dotted recipe keys to values (`{"validate.gates.max_top1_drop": 1.0}`);
    `output_dir` defaults to the recipe's `output_dir`, else `build/<name>`; `reuse=False`
    recomputes every stage; `cache` is the stage cache folder (shareable between builds,
    default `<build folder>/cache`). Returns the `BuildResult` (exit code 0 pass, 1 gate failed).
    """
    from nnship.pipeline import build as _build

    return _build(
        recipe,
        output_dir=output_dir,
        overrides=dict(overrides) if overrides else None,
        reuse=reuse,
        cache=cache,
    )


def demo(
    *,
    cache: str | Path | None = None,
    output_dir: str | Path | None = None,
    recipe: str | Path | None = None,
    reuse: bool = True,
    bundle_dir: str | Path | None = None,
) -> BuildResult:
    """`nnship demo`: train the demo model (first use; cached in `cache`, default
    `~/.cache/nnship/demo`) and build it with the demo recipe (or `recipe`): prune, distill,
    INT8, ONNX Runtime and OpenVINO, validation; the report as JSON, Markdown and HTML; then
    the bundle (`bundle_dir`, default `dist/demo`), loaded and smoke-tested with
    `nnship.runtime` (`BuildResult.bundle_check`)."""
    from nnship.demo import demo as _demo

    return _demo(
        cache=cache, output_dir=output_dir, recipe=recipe, reuse=reuse, bundle_dir=bundle_dir
    )
