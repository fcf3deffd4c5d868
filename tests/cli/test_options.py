"""The argument groups (`nnship.cli.options`): each adds its flags and builds its object."""

from __future__ import annotations

import argparse

import pytest

from nnship.cli.options import (
    BackendLoadArgs,
    GateArgs,
    LatencyArgs,
    ModelSourceArgs,
    ValidateConfigArgs,
    factory_kwargs,
)
from nnship.core.errors import DataError, ModelSourceError


def _parse(group, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    group.add_to(parser)
    return parser.parse_args(argv)


def test_factory_args_are_read_as_toml_else_as_text():
    assert factory_kwargs(["width=32", "depths=[1, 2]", "name=tiny", 'tag="a"']) == {
        "width": 32,
        "depths": [1, 2],
        "name": "tiny",
        "tag": "a",
    }


def test_a_factory_arg_without_key_names_the_item():
    with pytest.raises(ModelSourceError, match="Bad --factory-arg '=3'"):
        factory_kwargs(["=3"])


def test_model_source_builds_the_api_keywords_named_after_the_weights_flag():
    teacher = ModelSourceArgs(
        source="--teacher",
        source_help="teacher",
        input_help="input",
        factory_arg_help="factory",
        weights_flag="--teacher-weights",
    )
    args = _parse(teacher, ["--teacher", "m:f", "-i", "x:1x3x8x8", "--factory-arg", "width=4"])
    assert args.teacher == "m:f"
    assert teacher.api_kwargs(args) == {
        "inputs": ["x:1x3x8x8"],
        "factory_kwargs": {"width": 4},
        "teacher_weights": None,
        "trust_pickle": False,
    }


def test_gates_word_their_help_for_where_they_apply_and_build_the_gates_given():
    parser = argparse.ArgumentParser()
    GateArgs("constraints", wording="constraint").add_to(parser)
    text = parser.format_help()
    assert "infeasible: an artifact whose top-1 drop exceeds" in text and "fail a row" not in text
    args = parser.parse_args(["--max-top1-drop", "1.5", "--min-cosine", "0.99"])
    assert GateArgs("constraints").values(args) == {"max_top1_drop": 1.5, "min_cosine": 0.99}


def test_latency_warmup_caps_both_warmup_bounds_and_bad_batch_sizes_are_refused():
    latency = LatencyArgs()
    args = _parse(latency, ["--warmup", "3", "--latency-batch-sizes", "1,8"])
    assert latency.overrides(args) == {
        "max_warmup_runs": 3,
        "min_warmup_runs": 3,
        "batch_sizes": [1, 8],
    }
    with pytest.raises(DataError, match="--latency-batch-sizes '1,x'"):
        latency.overrides(_parse(latency, ["--latency-batch-sizes", "1,x"]))


def test_latency_config_names_the_verb_in_a_bad_value():
    latency = LatencyArgs()
    with pytest.raises(DataError, match="Bad bench option: field 'runs'"):
        latency.config(_parse(latency, ["--runs", "0"]), verb="bench")


def test_backend_options_after_the_command_win_over_dash_o():
    group = BackendLoadArgs(option_flag=True)
    args = _parse(group, ["-O", "hint=throughput", "-O", "num_streams=2"])
    args.unknown_options = ["--hint", "latency"]
    assert args.pass_unknown_options is True
    assert group.options(args) == {"hint": "latency", "num_streams": 2}


def test_validate_settings_override_the_recipe_section(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[validate]\nbatch_size = 4\n[validate.gates]\nmin_cosine = 0.9\n")
    settings = ValidateConfigArgs()
    args = _parse(settings, ["--recipe", str(recipe), "--min-cosine", "0.99", "--no-latency"])
    config = settings.config(args)
    assert config.batch_size == 4
    assert config.gates.min_cosine == 0.99
    assert config.latency.enabled is False
