"""`nnship build` end to end: the real CLI, real export, ONNX Runtime and validation."""

from __future__ import annotations

import json

import pytest

from nnship.core.fileio import sha256_file


def _report(build_dir):
    return json.loads((build_dir / "report" / "report.json").read_text())


def test_build_tiny_recipe_exits_0_and_writes_the_layout(
    run_cli, write_recipe, tiny_recipe_text, tmp_path
):
    recipe = write_recipe(tiny_recipe_text + "\n[validate.gates]\nmin_cosine = 0.999\n")
    out = tmp_path / "build"
    proc = run_cli("build", recipe, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "export" / "model.fp32.onnx").is_file()
    assert (out / "backends" / "onnxruntime" / "fp32").is_dir()
    assert (out / "report" / "report.md").is_file()
    report = _report(out)
    assert report["passed"] is True
    assert [row["label"] for row in report["rows"]] == ["onnxruntime/fp32"]
    row = report["rows"][0]
    assert row["classification"]["top1_agreement"] == pytest.approx(100.0)
    assert report["baseline"]["classification"]["accuracy"] > 50  # trained on real digits
    assert report["extra"]["build"]["stages"]["export"] == "ran"
    assert "onnxruntime/fp32" in proc.stdout  # the terminal table
    # no temporary files left anywhere in the build folder
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_failed_gate_exits_1_and_names_the_gate(run_cli, write_recipe, tiny_recipe_text, tmp_path):
    recipe = write_recipe(tiny_recipe_text)
    proc = run_cli("build", recipe, "-o", tmp_path / "b", "--max-size-mb", "0.000001")
    assert proc.returncode == 1, proc.stderr
    assert "gate check(s) failed" in proc.stderr and "max_size_mb" in proc.stderr
    assert _report(tmp_path / "b")["passed"] is False


def test_print_recipe_shows_resolved_defaults(run_cli, write_recipe, tiny_recipe_text):
    recipe = write_recipe(tiny_recipe_text)
    proc = run_cli("build", recipe, "--print-recipe", "json", "--set", "seed=5")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["seed"] == 5
    assert data["backends"]["targets"] == ["onnxruntime"]
    assert data["validate"]["latency"]["runs"] == 20
    toml_text = run_cli("build", recipe, "--print-recipe").stdout
    assert "[validate.gates]" in toml_text and 'name = "tiny"' in toml_text


def test_reuse_and_reproducibility(write_recipe, tiny_recipe_text, tmp_path):
    """A second build reuses finished stages; a fresh build of the same recipe and seed gives
    the same ONNX bytes and the same report metrics; a changed setting reruns its stage."""
    from nnship.api import build

    recipe = write_recipe(tiny_recipe_text)
    first = build(recipe, output_dir=tmp_path / "b")
    onnx = tmp_path / "b" / "export" / "model.fp32.onnx"
    digest = sha256_file(onnx)
    second = build(recipe, output_dir=tmp_path / "b")
    assert first.stages["export"] == "ran"
    assert second.stages["export"] == "reused"
    assert second.stages["compile onnxruntime/fp32"] == "reused"
    assert sha256_file(onnx) == digest

    fresh = build(recipe, output_dir=tmp_path / "fresh", reuse=False)
    assert fresh.stages["export"] == "ran"
    assert sha256_file(tmp_path / "fresh" / "export" / "model.fp32.onnx") == digest

    def metrics(result):
        row = result.report.rows[0]
        return (
            [o.model_dump(exclude={"name", "baseline_name"}) for o in row.outputs],
            row.classification.model_dump(),
            result.report.baseline.classification.model_dump(),
            result.report.data.fingerprint,
        )

    assert metrics(first) == metrics(fresh)

    changed = build(recipe, output_dir=tmp_path / "b", overrides={"export.simplify": False})
    assert changed.stages["export"] == "ran"


def test_two_build_folders_sharing_a_cache_reuse_stages(
    run_cli, write_recipe, tiny_recipe_text, tmp_path
):
    """`--cache DIR` shared by two build folders: the second finds the first's export and
    compile results, places the files in its own folder and records its own paths."""
    recipe = write_recipe(tiny_recipe_text)
    shared = tmp_path / "shared-cache"
    first = run_cli("build", recipe, "-o", tmp_path / "a", "--cache", shared)
    assert first.returncode == 0, first.stderr
    second = run_cli("build", recipe, "-o", tmp_path / "b", "--cache", shared)
    assert second.returncode == 0, second.stderr
    stages = _report(tmp_path / "b")["extra"]["build"]["stages"]
    assert stages["export"] == "reused"
    assert stages["compile onnxruntime/fp32"] == "reused"
    onnx_b = tmp_path / "b" / "export" / "model.fp32.onnx"
    assert sha256_file(onnx_b) == sha256_file(tmp_path / "a" / "export" / "model.fp32.onnx")
    row = _report(tmp_path / "b")["rows"][0]
    assert row["path"].startswith(str(tmp_path / "b"))
    assert not (tmp_path / "b" / "cache").exists()  # the shared folder, not the default


@pytest.mark.slow
def test_full_pipeline_prune_quantize_and_rows(write_recipe, tiny_recipe_text, tmp_path):
    from nnship.api import build

    recipe = write_recipe(
        tiny_recipe_text
        + '\n[prune]\nratio = 0.5\nround_to = 4\n\n[quantize]\nprecisions = ["int8"]\n'
    )
    result = build(recipe, output_dir=tmp_path / "b")
    assert result.stages["prune"] == "ran" and result.stages["calibration"] == "ran"
    assert [a.label for a in result.artifacts] == ["onnxruntime/fp32", "onnxruntime/int8"]
    assert (tmp_path / "b" / "compress" / "model.pruned.pt2").is_file()
    assert (tmp_path / "b" / "calibration" / "table.json").is_file()
    prune_info = result.report.extra["build"]["compress"]["prune"]
    assert prune_info["params_after"] < prune_info["params_before"]
    int8 = result.report.row("onnxruntime/int8")
    assert int8.extra["quantize"]["precision"] == "int8"
