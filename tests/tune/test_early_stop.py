"""A distillation that cannot reach the accuracy budget is stopped after `patience` epochs
and the trial recorded as pruned, with the reason."""

from __future__ import annotations

from nnship import api


def test_hopeless_distillation_is_stopped_and_recorded_as_pruned(tune_recipe, tmp_path):
    recipe = tune_recipe(
        """
        [prune]
        ratio = 0.75

        [distill]
        epochs = 4
        patience = 4

        [tune]
        sampler = "grid"
        constraints = { min_top1_agreement = 100.0 }
        patience = 1
        margin = 0.0
        [tune.space]
        "prune.ratio" = [0.75]
        "quantize.method" = ["minmax", "percentile"]
        """
    )
    result = api.tune(recipe, output_dir=tmp_path / "t", quiet=True)
    first, second = result.records
    assert first.state == "pruned"
    assert "distillation stopped after epoch 1" in first.reason
    assert "top-1 agreement" in first.reason and not first.artifacts
    # the same prune/distill settings with another quantizer are not distilled again
    assert second.state == "pruned" and f"as trial {first.number}" in second.reason
    assert result.pareto.groups == [] and result.exit_code == 1
