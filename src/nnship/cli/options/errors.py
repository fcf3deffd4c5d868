"""Invalid options in messages: a pydantic error's field path as the flag that set it
(`loc ("layer_ratios",)` -> `--layer-ratios`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["first_invalid_option", "option_name"]


def option_name(loc: Sequence[Any], *, default: str = "") -> str:
    """`("max_samples",)` -> `--max-samples`; an empty location gives `--<default>`."""
    field = ".".join(str(part) for part in loc) or default
    return f"--{field.replace('_', '-')}"


def first_invalid_option(exc: ValidationError, *, default: str = "") -> str:
    """`--flag: message` of the first error of `exc`."""
    err = exc.errors()[0]
    return f"{option_name(err['loc'], default=default)}: {err['msg']}"
