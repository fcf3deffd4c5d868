"""The order of the stages of `nnship build`, and nothing else.

Each stage lives in `nnship.stages.<name>`, takes the `StageContext` and its inputs, and
returns its result; this function passes results from one stage to the next:

    load -> compress -> export -> quantize (calibrate once) -> compile -> validate -> report
    -> bundle (with `[bundle]`; its targets are checked before the first stage)
"""

from __future__ import annotations

from nnship.pipeline.result import BuildResult
from nnship.stages.context import StageContext


def run_pipeline(ctx: StageContext) -> BuildResult:
    """Run every stage of `ctx.recipe` into `ctx.out`; stage modules import lazily."""
    from nnship.stages.bundle import check_bundle_targets, run_bundle
    from nnship.stages.compile import run_compile
    from nnship.stages.compress import run_compress
    from nnship.stages.export import run_export
    from nnship.stages.load import dynamic_batch, load_source_model, open_data, synthetic_data
    from nnship.stages.quantize import run_quantize
    from nnship.stages.validate import run_validation, save_report

    check_bundle_targets(ctx)
    loaded = load_source_model(ctx)
    declared = loaded.input_specs or ctx.recipe.model.input_specs() or []
    data = open_data(ctx, dynamic_batch(declared))
    compressed = run_compress(ctx, loaded, data.train)
    exported = run_export(ctx, compressed.model)
    evaluation = data.evaluation or synthetic_data(ctx, exported.input_specs)
    models = run_quantize(ctx, exported.onnx_path, data.calibration, evaluation)
    artifacts = run_compile(ctx, models, data.calibration)
    report = run_validation(ctx, loaded, exported, evaluation, artifacts, compressed.info)
    report_path = save_report(ctx, report)
    bundle_path = run_bundle(ctx, report)
    return BuildResult(
        report,
        [compiled.artifact for compiled in artifacts],
        0 if report.passed else 1,
        ctx.out,
        report_path,
        dict(ctx.stages),
        ctx.cache.root,
        bundle_path,
    )
