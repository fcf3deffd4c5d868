"""The recipe: parsing, defaults, path resolution, and error messages that name file and key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nnship.core import TensorSpec
from nnship.core.errors import RecipeError
from nnship.recipe import (
    cache_dir,
    load_recipe,
    parse_override,
    parse_recipe,
    recipe_to_toml,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MINIMAL = """
name = "m"
[model]
source = "nnship.models:digits_cnn"
inputs = ["x:1x1x8x8"]
"""


def test_minimal_recipe_gets_defaults():
    recipe = parse_recipe(MINIMAL)
    assert recipe.name == "m"
    assert recipe.seed == 0
    assert recipe.prune is None and recipe.distill is None and recipe.quantize is None
    assert recipe.backends.targets == ["onnxruntime"]
    assert recipe.validation.gates.active() == {}
    assert recipe.resolved_output_dir() == Path("build", "m").absolute()


def test_inputs_as_strings_and_tables():
    recipe = parse_recipe(
        """
        name = "m"
        [model]
        source = "pkg.mod:net"
        inputs = ["ids:1x16:int64", { name = "mask", shape = ["batch", 16], dtype = "int64" }]
        """
    )
    assert recipe.model.input_specs() == [
        TensorSpec("ids", (1, 16), "int64"),
        TensorSpec("mask", ("batch", 16), "int64"),
    ]


def test_typo_in_gate_names_file_section_key_and_suggestion(write_recipe):
    path = write_recipe(MINIMAL + "[validate.gates]\nmax_top1_dorp = 1.0\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == (
        f"{path}: [validate.gates] max_top1_dorp: unknown key (did you mean max_top1_drop?)"
    )


def test_unknown_section_suggests_the_known_one():
    with pytest.raises(RecipeError, match=r"quantise: unknown key \(did you mean quantize\?\)"):
        parse_recipe(MINIMAL + "[quantise]\nprecisions = ['int8']\n")


def test_unknown_key_without_close_match_lists_known_keys():
    with pytest.raises(RecipeError, match=r"\[model\] colour: unknown key \(known keys: .*source"):
        parse_recipe(MINIMAL.replace('inputs = ["x:1x1x8x8"]', 'colour = "red"'))


def test_wrong_type_names_the_key_and_value():
    with pytest.raises(RecipeError, match=r"recipe.toml: seed: .*integer.*\(got 'abc'\)"):
        parse_recipe('seed = "abc"\n' + MINIMAL)


def test_wrong_type_inside_a_list_table_points_at_the_element():
    text = MINIMAL.replace('["x:1x1x8x8"]', '[{ name = "x", shap = [1, 8] }]')
    with pytest.raises(RecipeError) as info:
        parse_recipe(text)
    message = str(info.value)
    assert "inputs[0]" in message and "shap: unknown key (did you mean shape?)" in message
    assert "valid string" not in message  # the str branch of the union is not reported


def test_missing_required_key():
    with pytest.raises(RecipeError, match=r"\[model\] source: missing required key"):
        parse_recipe('name = "m"\n[model]\ninputs = []\n')


def test_toml_syntax_error_names_the_line(write_recipe):
    path = write_recipe('name = "m"\n[model]\nsource = \n')
    with pytest.raises(RecipeError, match=rf"{path.name}: invalid TOML: .*line 3"):
        load_recipe(path)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.toml")


def test_bad_name_is_refused():
    with pytest.raises(RecipeError, match="name: .*folder-safe"):
        parse_recipe(MINIMAL.replace('"m"', '"../escape"'))


def test_relative_paths_resolve_against_the_recipe_folder(write_recipe, tmp_path):
    (tmp_path / "w.pt").write_bytes(b"")
    (tmp_path / "calib.npz").write_bytes(b"")
    (tmp_path / "net.py").write_text("")
    path = write_recipe(
        """
        name = "m"
        output_dir = "out"
        [model]
        source = "net.py:build"
        weights = "w.pt"
        [data.calibration]
        path = "calib.npz"
        """
    )
    recipe = load_recipe(path)
    assert recipe.model.source == f"{tmp_path / 'net.py'}:build"
    assert recipe.model.weights == str(tmp_path / "w.pt")
    assert recipe.data.calibration.path == str(tmp_path / "calib.npz")
    assert recipe.resolved_output_dir() == tmp_path / "out"
    assert recipe.base_dir == tmp_path


def test_missing_file_names_section_key_and_path(write_recipe, tmp_path):
    path = write_recipe(MINIMAL + "[data.evaluation]\npath = 'eval.npz'\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == (
        f"{path}: [data.evaluation] path: file '{tmp_path / 'eval.npz'}' does not exist"
    )


def test_module_references_are_not_treated_as_files():
    recipe = parse_recipe(MINIMAL + "[data.calibration]\npath = 'my_pkg.data:calibration'\n")
    assert recipe.data.calibration.path == "my_pkg.data:calibration"


def test_environment_variables_expand(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_DATA", str(tmp_path))
    (tmp_path / "c.npz").write_bytes(b"")
    recipe = parse_recipe(MINIMAL + "[data.calibration]\npath = '${MY_DATA}/c.npz'\n")
    assert recipe.data.calibration.path == str(tmp_path / "c.npz")


def test_cache_dir_variable_has_a_default(monkeypatch):
    monkeypatch.delenv("NNSHIP_CACHE_DIR", raising=False)
    recipe = parse_recipe(
        MINIMAL + "[data.calibration]\npath = '${NNSHIP_CACHE_DIR}/c.npz'\n", check_files=False
    )
    assert recipe.data.calibration.path == str(Path("~/.cache/nnship/c.npz").expanduser())
    assert cache_dir() == Path("~/.cache/nnship").expanduser()


def test_unset_variable_is_an_error(monkeypatch):
    monkeypatch.delenv("NNSHIP_NOT_SET", raising=False)
    with pytest.raises(RecipeError, match=r"\[data.calibration\] path: .*NNSHIP_NOT_SET"):
        parse_recipe(MINIMAL + "[data.calibration]\npath = '$NNSHIP_NOT_SET/c.npz'\n")


def test_overrides_apply_before_validation():
    recipe = parse_recipe(
        MINIMAL,
        overrides={"validate.gates.max_top1_drop": 0.5, "seed": 7},
    )
    assert recipe.validation.gates.max_top1_drop == 0.5
    assert recipe.seed == 7
    with pytest.raises(RecipeError, match=r"\[validate.gates\] min_cosin: unknown key"):
        parse_recipe(MINIMAL, overrides={"validate.gates.min_cosin": 0.9})


def test_parse_override_reads_toml_values():
    assert parse_override("seed=3") == ("seed", 3)
    assert parse_override("quantize.precisions=['int8']") == ("quantize.precisions", ["int8"])
    assert parse_override("name=plain text") == ("name", "plain text")
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        parse_override("seed")


def test_printed_toml_reads_back_to_the_same_recipe():
    recipe = parse_recipe(
        MINIMAL + "[quantize]\nprecisions = ['int8', 'fp16']\n[validate.gates]\nmin_cosine = 0.9\n"
    )
    text = recipe_to_toml(recipe)
    again = parse_recipe(text)
    assert again.to_dict() == recipe.to_dict()
    assert tomllib.loads(text)["quantize"]["precisions"] == ["int8", "fp16"]
    assert json.loads(json.dumps(recipe.to_dict()))["validate"]["gates"]["min_cosine"] == 0.9


def test_unavailable_stage_section_is_refused_with_the_reason():
    from nnship.recipe.sections import _unavailable

    placeholder = _unavailable("prune", "nnship.compress.config")
    assert placeholder().model_dump() == {}
    with pytest.raises(ValueError, match=r"no nnship.compress.config.*\[prune\] section"):
        placeholder.model_validate({"ratio": 0.5})


def test_example_recipes_parse():
    repo = Path(__file__).resolve().parents[1]
    demo = load_recipe(repo / "examples" / "demo" / "recipe.toml", check_files=False)
    assert demo.name == "demo" and demo.model.source == "nnship.models:resnet_small"
    assert demo.prune is not None and demo.distill is not None
    user = load_recipe(repo / "examples" / "my_pkg.toml")
    assert user.model.source == "my_pkg.models:small_cnn"


def test_embedded_demo_recipe_matches_the_example_file():
    from nnship.demo import EMBEDDED_RECIPE

    repo = Path(__file__).resolve().parents[1]
    assert (repo / "examples" / "demo" / "recipe.toml").read_text() == EMBEDDED_RECIPE


def test_overrides_apply_to_a_parsed_recipe_and_keep_unset_defaults(tmp_path):
    """`apply_overrides` works on the parsed data (no TOML round trip): the override lands,
    keys the recipe never set stay unset, and a typo'd override names the key."""
    from nnship.recipe import apply_overrides

    recipe = parse_recipe(MINIMAL + '\n[quantize]\nprecisions = ["int8"]\n', base_dir=tmp_path)
    changed = apply_overrides(recipe, {"seed": 7, "quantize.method": "minmax"})
    assert changed.seed == 7 and changed.quantize.method == "minmax"
    assert "profile" not in changed.quantize.model_fields_set
    assert changed.model.source == recipe.model.source
    with pytest.raises(RecipeError, match="sed"):
        apply_overrides(recipe, {"sed": 1})


def test_recipe_toml_round_trips_through_tomli_w(tmp_path):
    recipe = parse_recipe(MINIMAL, base_dir=tmp_path)
    again = parse_recipe(recipe_to_toml(recipe), base_dir=tmp_path)
    assert again.to_dict() == recipe.to_dict()
