"""The bundle stage of `nnship build`: with `[bundle]` in the recipe, the build ends with a
deployable bundle folder (`nnship.bundle.writer.write_bundle`).

Contract: `check_bundle_targets` runs before any other stage and refuses a `[bundle] targets`
entry the recipe will not build (a `RecipeError` naming it); `run_bundle` requires the saved
report (the build folder is finished) and returns the bundle folder, or None when the recipe
has no `[bundle]` or a gate failed (a bundle is for shipping; `nnship bundle BUILD_DIR` still
bundles a failed build on request). Never cached: it reads the finished build folder, and
writing it again gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from nnship.core.errors import RecipeError
from nnship.stages.context import StageContext

if TYPE_CHECKING:
    from nnship.recipe.bundle_section import BundleConfig
    from nnship.validate.report import Report

log = logging.getLogger("nnship.pipeline")


def planned_artifacts(ctx: StageContext) -> list[str]:
    """The artifact ids ("openvino/int8") the recipe builds: fp32 on every target backend,
    and each `[quantize] precisions` entry on the backends that run it."""
    from nnship.backends import precisions_of

    targets = list(getattr(ctx.recipe.backends, "targets", ["onnxruntime"]))
    precisions = list(ctx.recipe.quantize.precisions) if ctx.recipe.quantize else []
    ids = [f"{b}/fp32" for b in targets]
    ids += [f"{b}/{p}" for b in targets for p in precisions if p in precisions_of(b)]
    return ids


def check_bundle_targets(ctx: StageContext) -> None:
    """Refuse `[bundle] targets` the recipe does not build, before the expensive stages."""
    bundle = ctx.recipe.bundle
    if bundle is None or not bundle.targets:
        return
    planned = planned_artifacts(ctx)
    missing = [t for t in bundle.targets if t not in planned]
    if missing:
        raise RecipeError(
            f"{ctx.name}: [bundle] targets: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not built by this recipe "
            f"(it builds: {', '.join(planned)}); add the backend to [backends] targets "
            "or the precision to [quantize] precisions"
        )


def run_bundle(ctx: StageContext, report: Report) -> Path | None:
    """Write the recipe's bundle from the finished build folder; its folder, or None."""
    bundle = ctx.recipe.bundle
    if bundle is None:
        return None
    if not report.passed:
        failed = len(report.failed_gates)
        log.warning("bundle not written: %d gate check(s) failed", failed)
        ctx.mark("bundle", f"skipped ({failed} gate check(s) failed)")
        return None
    from nnship.bundle.writer import write_bundle

    output = Path(bundle.output) if bundle.output else Path("dist", ctx.recipe.name).absolute()
    result = write_bundle(
        ctx.out,
        output,
        targets=bundle.targets,
        samples=bundle.samples,
        preprocessing=bundle.preprocessing,
        labels=_labels(bundle),
        archive=bundle.archive,
    )
    ctx.mark("bundle", "written")
    return result.path


def _labels(bundle: BundleConfig) -> list[str] | None:
    if bundle.labels is not None:
        return list(bundle.labels)
    if bundle.labels_file:
        from nnship.recipe.bundle_section import read_labels

        return read_labels(bundle.labels_file)
    return None
