"""`nnship bundle`, `nnship bundle verify` and `nnship build` with `[bundle]`: the real CLI,
exit 2 with the file/field named for each bad input."""

from __future__ import annotations

import json
import shutil

from bundle_recipes import recipe_text


def test_bundle_then_verify_on_the_command_line(run_cli, built, tmp_path):
    out = tmp_path / "dist" / "tiny"
    proc = run_cli("bundle", built, "-o", out, "--target", "ort/int8", "--archive",
                   "--json", tmp_path / "b.json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime/int8" in proc.stdout and (tmp_path / "dist" / "tiny.tar.gz").is_file()
    assert json.loads((tmp_path / "b.json").read_text())["artifacts"] == ["onnxruntime/int8"]
    proc = run_cli("bundle", "verify", out)
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime/int8" in proc.stdout and "passed" in proc.stdout

    shutil.copy(out / "README.md", out / "samples" / "extra.md")
    proc = run_cli("bundle", "verify", out)
    assert proc.returncode == 2
    assert "extra.md' is not listed in manifest.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_inputs_exit_2_naming_what(run_cli, built, tmp_path):
    proc = run_cli("bundle", built, "-o", tmp_path / "d", "--target", "openvino/fp16")
    assert proc.returncode == 2 and "openvino/fp16 were not built" in proc.stderr
    proc = run_cli("bundle", tmp_path, "-o", tmp_path / "d")
    assert proc.returncode == 2 and "report.json' is missing" in proc.stderr
    proc = run_cli("bundle", "verify", tmp_path / "nothing")
    assert proc.returncode == 2 and "not a bundle folder" in proc.stderr


def test_build_with_a_bundle_section_ends_with_the_bundle(
    built, trained_digits_cnn, digits_npz, tmp_path
):
    from nnship import api

    (tmp_path / "labels.txt").write_text("\n".join(str(i) for i in range(10)) + "\n")
    extra = """
    [bundle]
    output = "dist/tiny"
    targets = ["openvino/int8"]
    samples = 2
    labels_file = "labels.txt"

    [bundle.preprocessing]
    color = "GRAY"
    resize = [8, 8]
    scale = 0.0625
    """
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_text(trained_digits_cnn, digits_npz, extra))
    # the shared build's stage cache: every stage is reused, the bundle is new
    result = api.build(recipe, output_dir=tmp_path / "build", cache=built / "cache")
    assert result.exit_code == 0 and result.stages["bundle"] == "written"
    dist = tmp_path / "dist" / "tiny"  # relative to the recipe
    assert result.bundle_path == dist and result.to_dict()["bundle_path"] == str(dist)
    manifest = json.loads((dist / "manifest.json").read_text())
    assert [a["id"] for a in manifest["artifacts"]] == ["openvino/int8"]
    assert manifest["labels"][9] == "9" and manifest["samples"]["count"] == 2
    assert manifest["preprocessing"]["color"] == "GRAY"
    assert manifest["recipe"]["bundle"]["targets"] == ["openvino/int8"]
    assert api.bundle_verify(dist).ok


def test_a_bundle_target_the_recipe_does_not_build_fails_before_any_stage(
    trained_digits_cnn, digits_npz, tmp_path
):
    import pytest

    from nnship import api
    from nnship.core.errors import RecipeError

    extra = '\n[bundle]\ntargets = ["tensorrt/fp16"]\n'
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_text(trained_digits_cnn, digits_npz, extra))
    with pytest.raises(RecipeError, match=r"\[bundle\] targets: tensorrt/fp16 is not built"):
        api.build(recipe, output_dir=tmp_path / "build")
    assert not (tmp_path / "build").exists()  # nothing ran, nothing left
    bad = recipe_text(trained_digits_cnn, digits_npz, '\n[bundle]\nlabels_file = "nope.txt"\n')
    recipe.write_text(bad)
    with pytest.raises(RecipeError, match=r"\[bundle\] labels_file: file .*nope.txt"):
        api.build(recipe, output_dir=tmp_path / "build")
