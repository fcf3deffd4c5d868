"""The model-source group: the model (a positional MODEL or an option such as `--teacher`),
`--input`, `--factory-arg`, the weights flag and `--trust-pickle`; it builds the keyword
arguments the API's model loaders take (`inputs`, `factory_kwargs`, `weights`,
`trust_pickle`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnship.core.errors import ModelSourceError
from nnship.core.toml import parse_literal_or_text

__all__ = ["INPUT_METAVAR", "ModelSourceArgs", "add_inputs", "factory_kwargs"]

INPUT_METAVAR = "NAME:SHAPE[:DTYPE]"
TRUST_PICKLE_HELP = "allow unpickling (runs code from the file: only for files you trust)"


def add_inputs(parser: Any, help: str, *, short: bool = True) -> None:  # noqa: A002 - argparse's word
    """`--input NAME:SHAPE[:DTYPE]` (repeatable; `-i` too unless `short` is False) into
    `args.inputs`, a list (empty when not given)."""
    flags = ("--input", "-i") if short else ("--input",)
    parser.add_argument(*flags, dest="inputs", action="append", default=[],
                        metavar=INPUT_METAVAR, help=help)  # fmt: skip


def factory_kwargs(items: list[str]) -> dict[str, Any]:
    """`--factory-arg KEY=VALUE` items as keyword arguments; VALUE is read as TOML, else kept
    as the string. A malformed item is a `ModelSourceError`."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ModelSourceError(f"Bad --factory-arg '{item}': expected KEY=VALUE, e.g. width=32")
        kwargs[key.strip()] = parse_literal_or_text(value.strip())
    return kwargs


@dataclass(frozen=True)
class ModelSourceArgs:
    """Where a model comes from and what loading it needs.

    `source` is "model" for a positional MODEL, else the option naming the model
    (`"--teacher"`, `"--baseline"`); `factory_arg_help` None leaves out `--factory-arg`;
    `weights_flag` names the state-dict option, whose API keyword is its name
    (`--teacher-weights` -> `teacher_weights`).
    """

    source_help: str
    input_help: str
    source: str = "model"
    required: bool = False
    short_input: bool = True
    factory_arg_help: str | None = None
    weights_flag: str = "--weights"
    weights_help: str = "state dict loaded into the factory's module"
    trust_pickle_help: str = TRUST_PICKLE_HELP

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        if self.source.startswith("-"):
            parser.add_argument(self.source, required=self.required, metavar="MODEL",
                                help=self.source_help)  # fmt: skip
        else:
            parser.add_argument(self.source, metavar="MODEL", help=self.source_help)
        add_inputs(parser, self.input_help, short=self.short_input)
        if self.factory_arg_help is not None:
            parser.add_argument("--factory-arg", action="append", default=[], metavar="KEY=VALUE",
                                help=self.factory_arg_help)  # fmt: skip
        parser.add_argument(self.weights_flag, type=Path, metavar="STATE_DICT.pt",
                            help=self.weights_help)  # fmt: skip
        parser.add_argument("--trust-pickle", action="store_true", help=self.trust_pickle_help)

    @property
    def _weights_key(self) -> str:
        return self.weights_flag.lstrip("-").replace("-", "_")

    def api_kwargs(self, args: argparse.Namespace) -> dict[str, Any]:
        """`inputs`, `factory_kwargs` (with `--factory-arg`), the weights and `trust_pickle`,
        as the API functions name them; absent lists are None."""
        kwargs: dict[str, Any] = {"inputs": args.inputs or None}
        if self.factory_arg_help is not None:
            kwargs["factory_kwargs"] = factory_kwargs(args.factory_arg) or None
        kwargs[self._weights_key] = getattr(args, self._weights_key)
        kwargs["trust_pickle"] = args.trust_pickle
        return kwargs
