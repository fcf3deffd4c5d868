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
        """
    )
    result = api.tune(recipe, output_dir=tmp_path / "t", quiet=True)
    (record,) = result.records
    assert record.state == "pruned"
    assert "distillation stopped after epoch 1" in record.reason
    assert "top-1 agreement" in record.reason and not record.artifacts
    assert result.pareto.groups == [] and result.exit_code == 1
