"""The recipe-override group: `--set KEY=VALUE` (repeatable; the value read as TOML), built into
dotted recipe keys -> values, applied before the recipe is validated."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

__all__ = ["RecipeOverrideArgs"]


@dataclass(frozen=True)
class RecipeOverrideArgs:
    help: str

    def add_to(self, parser: Any) -> None:
        parser.add_argument("--set", dest="overrides", action="append", default=[],
                            metavar="KEY=VALUE", help=self.help)  # fmt: skip

    def overrides(self, args: argparse.Namespace) -> dict[str, Any]:
        """`--set` items as dotted key -> value (a malformed item is a `RecipeError`)."""
        from nnship.recipe import parse_override

        return dict(parse_override(text) for text in args.overrides)
