"""The tune loop on real builds: grid coverage, stage reuse, seeds, constraints, relaxed
results, refusals, promote -> build."""

from __future__ import annotations

import json

import pytest

from nnship import api
from nnship.cli import main as cli_main
from nnship.core.errors import RecipeError
from nnship.tune.records import read_pareto, read_trials
from nnship.tune.study import StudyMismatch
from tests.tune.conftest import GRID_2X2


def _points(records):
    return [tuple(sorted(r.params.items())) for r in records]


@pytest.mark.slow
def test_grid_covers_every_point_once_and_shares_stages(tune_recipe, tmp_path):
    recipe = tune_recipe(
        """
        [distill]
        epochs = 1

        [tune]
        sampler = "grid"
        constraints = { max_top1_drop = 50.0 }
        [tune.space]
        "prune.ratio" = [0.25, 0.5]
        "quantize.method" = ["minmax", "percentile"]
        """
    )
    result = api.tune(recipe, output_dir=tmp_path / "t", quiet=True)
    records = read_trials(tmp_path / "t")
    assert len(records) == 4 and len(set(_points(records))) == 4
    assert all(r.state == "complete" for r in records)
    stages = [r.stages for r in records]

    def runs(stage):
        return [s.get(stage) for s in stages].count("ran")

    # prune, distill, export and calibration once per prune ratio, not once per trial;
    # the float baseline once for all; each (ratio, method) quantizes once
    assert [runs(s) for s in ("prune", "distill", "export", "calibration")] == [2, 2, 2, 2]
    assert runs("baseline") == 1
    assert runs("quantize int8.onnxruntime") == 4
    assert result.feasible and result.exit_code == 0
    pareto = read_pareto(tmp_path / "t")
    assert {(g.backend, g.precision) for g in pareto.groups} == {
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
    }
    assert pareto.retimed
    assert all(p.retimed_latency_ms is not None for g in pareto.groups for p in g.front)
    assert (tmp_path / "t" / "pareto.md").read_text().startswith("# Tune")


def test_one_front_point_per_artifact_file(tune_recipe, tmp_path, shared_cache):
    # the fp32 model is the same file in every trial of a quantize-only space
    api.tune(tune_recipe(GRID_2X2), output_dir=tmp_path / "t", quiet=True, cache=shared_cache)
    fp32 = next(g for g in read_pareto(tmp_path / "t").groups if g.precision == "fp32")
    assert len(fp32.front) == 1 and fp32.front[0].trial == 0


def test_the_same_seed_gives_the_same_trials(tune_recipe, tmp_path, shared_cache):
    recipe = tune_recipe(
        """
        [tune]
        sampler = "tpe"
        trials = 2
        seed = 7
        [tune.space]
        "quantize.method" = ["minmax", "percentile", "mse"]
        "quantize.per_channel" = [true, false]
        """
    )
    cache = shared_cache
    first = api.tune(recipe, output_dir=tmp_path / "a", cache=cache, quiet=True)
    second = api.tune(recipe, output_dir=tmp_path / "b", cache=cache, quiet=True)
    assert _points(first.records) == _points(second.records)
    assert len(set(_points(first.records))) > 1
    other = api.tune(recipe, output_dir=tmp_path / "c", cache=cache, seed=8, quiet=True)
    assert _points(other.records) != _points(first.records)


def test_no_feasible_trial_still_gives_the_closest_and_a_relaxed_front(
    tune_recipe, tmp_path, shared_cache
):
    recipe = tune_recipe(
        """
        [tune]
        sampler = "random"
        trials = 2
        constraints = { min_sqnr_db = 500.0 }
        [tune.space]
        "quantize.method" = ["minmax", "percentile"]
        """
    )
    result = api.tune(recipe, output_dir=tmp_path / "t", quiet=True, cache=shared_cache)
    assert not result.feasible and result.exit_code == 1
    assert all(r.state == "infeasible" and not r.feasible for r in result.records)
    relaxed = read_pareto(tmp_path / "t").relaxed
    assert relaxed is not None and relaxed.closest_trial in {r.number for r in result.records}
    assert 0 < relaxed.missed_by["min_sqnr_db"] < 500
    assert relaxed.groups and all(g.front for g in relaxed.groups)
    record = result.records[0]
    assert all("min_sqnr_db" in a.missed and not a.feasible for a in record.artifacts)


def test_an_infeasible_artifact_is_not_on_the_front(tune_recipe, tmp_path, shared_cache):
    # fp32 passes a cosine budget of 0.99999999, int8 does not: int8 rows are infeasible
    recipe = tune_recipe(
        """
        [tune]
        sampler = "grid"
        constraints = { min_cosine = 0.99999999 }
        [tune.space]
        "quantize.method" = ["minmax"]
        """
    )
    result = api.tune(recipe, output_dir=tmp_path / "t", quiet=True, cache=shared_cache)
    (record,) = result.records
    int8 = next(a for a in record.artifacts if a.precision == "int8")
    fp32 = next(a for a in record.artifacts if a.precision == "fp32")
    assert fp32.feasible and not int8.feasible and int8.missed["min_cosine"] > 0
    assert record.state == "complete"  # the trial has a feasible artifact (fp32)
    assert [(g.precision) for g in result.pareto.groups] == ["fp32"]


def test_promoted_recipe_rebuilds_the_same_artifacts(tune_recipe, tmp_path, shared_cache):
    result = api.tune(
        tune_recipe(GRID_2X2), output_dir=tmp_path / "t", quiet=True, cache=shared_cache, trials=1
    )
    record = result.records[-1]
    best = tmp_path / "best.toml"
    code = cli_main.main(
        ["tune", "promote", str(tmp_path / "t"), "--trial", str(record.number), "-o", str(best)]
    )
    assert code == 0
    assert "[tune" not in best.read_text()
    built = api.build(best, output_dir=tmp_path / "rebuilt")
    from nnship.core.fileio import sha256_file

    rebuilt = {a.label: sha256_file(a.path) for a in built.artifacts}
    assert rebuilt == {a.label: a.sha256 for a in record.artifacts}


def test_show_prints_the_front_per_backend_and_precision(
    tune_recipe, tmp_path, capsys, shared_cache
):
    api.tune(
        tune_recipe(GRID_2X2), output_dir=tmp_path / "t", quiet=True, cache=shared_cache, trials=2
    )
    capsys.readouterr()
    code = cli_main.main(["tune", "show", str(tmp_path / "t"), "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "onnxruntime/int8" in out and "onnxruntime/fp32" in out and "trials: 2 " in out
    assert json.loads((tmp_path / "s.json").read_text())["trials"] == 2
    code = cli_main.main(["tune", "show", str(tmp_path / "t"), "--html", str(tmp_path / "t.html")])
    assert code == 0 and (tmp_path / "t.html").is_file()
    assert (tmp_path / "t" / "tune.html").is_file()  # every tune run ends with its page


def test_resume_with_a_changed_space_is_refused_and_shows_the_difference(
    tune_recipe, tmp_path, shared_cache
):
    api.tune(
        tune_recipe(GRID_2X2), output_dir=tmp_path / "t", quiet=True, cache=shared_cache, trials=1
    )
    changed = tune_recipe(GRID_2X2.replace('"percentile"]', '"mse"]'), name="changed.toml")
    with pytest.raises(StudyMismatch, match="quantize.method") as info:
        api.tune(changed, output_dir=tmp_path / "t", quiet=True, cache=shared_cache, resume=True)
    assert "--force" in str(info.value)
    assert len(read_trials(tmp_path / "t")) == 1  # nothing written
    with pytest.raises(RecipeError, match="--resume"):
        api.tune(tune_recipe(GRID_2X2), output_dir=tmp_path / "t", quiet=True, cache=shared_cache)
    forced = api.tune(
        changed, output_dir=tmp_path / "t", quiet=True, cache=shared_cache, trials=1, force=True
    )
    assert [r.params["quantize.method"] for r in forced.records] in (["minmax"], ["mse"])


def test_a_worker_with_another_recipe_cannot_join_the_study(tune_recipe, tmp_path, shared_cache):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    api.tune(
        tune_recipe(GRID_2X2),
        output_dir=tmp_path / "w1",
        storage=url,
        trials=1,
        quiet=True,
        cache=shared_cache,
    )
    other = tune_recipe(GRID_2X2.replace("5.0", "2.0"), name="other.toml")
    with pytest.raises(StudyMismatch, match="max_top1_drop"):
        api.tune(
            other,
            output_dir=tmp_path / "w2",
            storage=url,
            study="tiny",
            quiet=True,
            cache=shared_cache,
        )


def test_nsga2_runs_a_constrained_multi_objective_study(tune_recipe, tmp_path, shared_cache):
    result = api.tune(
        tune_recipe(GRID_2X2.replace('"grid"', '"nsga2"')),
        output_dir=tmp_path / "t",
        trials=2,
        quiet=True,
        cache=shared_cache,
    )
    assert [r.state for r in result.records] == ["complete", "complete"]
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    assert len(study.directions) == 2
    assert all(t.user_attrs["constraints"] == [0.0] for t in study.trials)
