"""The command line is a layer over `nnship.api`: every verb's handler calls exactly one API
function (the one of the same name) and nothing else of the API."""

from __future__ import annotations

import inspect

import pytest

from nnship import api
from nnship.cli import main as cli_main

ARGV = {
    "bench": ["m.onnx"],
    "build": ["recipe.toml"],
    "bundle": ["build/demo", "-o", "dist/demo"],
    "calibrate": ["m.onnx", "--data", "d.npz"],
    "check": ["m.onnx"],
    "compare": ["a.json", "b.json"],
    "compile": ["m.onnx", "--backend", "ort"],
    "demo": [],
    "distill": ["--teacher", "t:f", "--student", "s.pt2", "--data", "d.npz", "-o", "o.pt2"],
    "explain": ["m.onnx", "q.onnx", "--data", "d.npz"],
    "export": ["pkg.mod:net", "-o", "m.onnx", "--input", "x:1x3x8x8"],
    "prune": ["pkg.mod:net", "-o", "p.pt2", "--input", "x:1x3x8x8"],
    "quantize": ["m.onnx", "-o", "q.onnx"],
    "report": ["r.json"],
    "tune": ["recipe.toml"],
    "run": ["dist", "--input", "x.npy"],
    "validate": ["--data", "d.npz", "--baseline", "m.onnx", "--candidate", "q.onnx"],
}


class _Called(BaseException):
    """Raised by the stand-in API functions: stops the handler at its first API call."""


def _subcommands() -> list[str]:
    parser = cli_main.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_every_subcommand_has_an_api_function_and_an_argv_here():
    assert _subcommands() == sorted(api.COMMANDS) == sorted(ARGV)


@pytest.mark.parametrize("verb", sorted(ARGV))
def test_handler_calls_exactly_its_api_function(verb, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []

    def stand_in(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise _Called(name)

        return call

    for name, func in api.COMMANDS.items():
        monkeypatch.setattr(api, func.__name__, stand_in(name))
    with pytest.raises(_Called):
        cli_main.main([verb, *ARGV[verb]])
    assert calls == [verb]


SUB_ARGV = {
    "bundle verify": ["bundle", "verify", "dist/demo"],
    "tune show": ["tune", "show", "build/tune"],
    "tune promote": ["tune", "promote", "build/tune", "--trial", "3", "-o", "best.toml"],
}


@pytest.mark.parametrize("verb", sorted(SUB_ARGV))
def test_second_level_verb_calls_exactly_its_api_function(verb, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    functions = [*api.COMMANDS.values(), *api.SUBCOMMANDS.values()]

    def stand_in(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise _Called(name)

        return call

    for func in functions:
        monkeypatch.setattr(api, func.__name__, stand_in(func.__name__))
    with pytest.raises(_Called):
        cli_main.main(SUB_ARGV[verb])
    assert calls == [api.SUBCOMMANDS[verb].__name__]


_ALL = {**api.COMMANDS, **{f.__name__: f for f in api.SUBCOMMANDS.values()}}


@pytest.mark.parametrize("name", sorted(_ALL))
def test_api_functions_are_typed_and_documented(name):
    """No `*args`/`**kwargs` pass-through; every parameter and the return are annotated."""
    func = _ALL[name]
    signature = inspect.signature(func)
    kinds = {p.kind for p in signature.parameters.values()}
    assert (
        inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    )
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    assert signature.return_annotation is not inspect.Signature.empty
    verb = name.replace("_", " ")
    assert func.__doc__ and func.__doc__.startswith(f"`nnship {verb}")


@pytest.mark.parametrize("verb", sorted(ARGV))
def test_handler_source_names_one_api_call(verb):
    """Statically: the handler's `run` calls its API function (`api.<verb>`; `run` calls
    `api.run_bundle`) once and no other API function."""
    import ast
    import importlib
    import textwrap

    module = importlib.import_module(f"nnship.cli.cmd_{verb}")
    tree = ast.parse(textwrap.dedent(inspect.getsource(module.run)))
    api_calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "api"
    ]
    assert api_calls == [api.COMMANDS[verb].__name__]


def test_every_api_result_type_has_to_dict():
    """What each API function returns (its annotation) can be written as JSON."""
    import nnship.api as api_pkg

    types = {**_result_types(), **{n: getattr(api_pkg, n) for n in api_pkg.__all__}}
    for name, func in api_pkg.COMMANDS.items():
        annotation = inspect.signature(func).return_annotation
        returned = types[annotation] if isinstance(annotation, str) else annotation
        assert callable(getattr(returned, "to_dict", None)), name


def _result_types() -> dict:
    from nnship.calibration import CalibrationTable
    from nnship.core import Artifact
    from nnship.exporter.export import ExportResult
    from nnship.pipeline.result import BuildResult
    from nnship.quantize.result import QuantizeResult
    from nnship.validate.bench import BenchResult
    from nnship.validate.compare import Comparison
    from nnship.validate.explain.layers import Explanation
    from nnship.validate.report import Report

    return {
        t.__name__: t
        for t in (
            Artifact,
            BenchResult,
            BuildResult,
            CalibrationTable,
            Comparison,
            Explanation,
            ExportResult,
            QuantizeResult,
            Report,
        )
    }
