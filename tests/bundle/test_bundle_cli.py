"""`nnship bundle`, `nnship bundle verify` and `nnship build` with `[bundle]`: the real CLI,
exit 2 with the file/field named for each bad input."""

from __future__ import annotations

import json
import shutil

from conftest import recipe_text


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
    run_cli, trained_digits_cnn, digits_npz, tmp_path
):
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
    proc = run_cli("build", recipe, "-o", tmp_path / "build", "--set",
                   'backends.targets=["onnxruntime", "openvino"]')  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    dist = tmp_path / "dist" / "tiny"  # relative to the recipe
    assert f"bundle: {dist}" in proc.stdout
    manifest = json.loads((dist / "manifest.json").read_text())
    assert [a["id"] for a in manifest["artifacts"]] == ["openvino/int8"]
    assert manifest["labels"][9] == "9" and manifest["samples"]["count"] == 2
    assert manifest["preprocessing"]["color"] == "GRAY"
    assert run_cli("bundle", "verify", dist).returncode == 0


def test_a_bundle_target_the_recipe_does_not_build_fails_before_any_stage(
    run_cli, trained_digits_cnn, digits_npz, tmp_path
):
    extra = '\n[bundle]\ntargets = ["tensorrt/fp16"]\n'
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_text(trained_digits_cnn, digits_npz, extra))
    proc = run_cli("build", recipe, "-o", tmp_path / "build")
    assert proc.returncode == 2
    assert "[bundle] targets: tensorrt/fp16 is not built by this recipe" in proc.stderr
    assert not (tmp_path / "build" / "export").exists()  # nothing expensive ran
