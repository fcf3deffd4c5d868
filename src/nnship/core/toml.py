"""Reading TOML (recipes, overrides, condition literals): `tomllib` on Python 3.11+, `tomli` on
3.10, behind one import so no module repeats the fallback."""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError
"""What `loads` raises for text that is not TOML."""

__all__ = ["TOMLDecodeError", "loads", "parse_literal", "parse_literal_or_text"]


def loads(text: str) -> dict[str, Any]:
    """The TOML document `text` as a dict; raises `TOMLDecodeError`."""
    return tomllib.loads(text)


def parse_literal(text: str) -> Any:
    """One TOML value (`0.5`, `true`, `"mse"`, `["int8"]`); raises `TOMLDecodeError`."""
    return tomllib.loads(f"v = {text}")["v"]


def parse_literal_or_text(text: str) -> Any:
    """`text` read as a TOML value, else the text itself (CLI `KEY=VALUE` overrides: `seed=1`
    is an int, `method=mse` the string "mse")."""
    try:
        return parse_literal(text)
    except TOMLDecodeError:
        return text
