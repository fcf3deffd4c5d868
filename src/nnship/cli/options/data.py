"""The data group: one data flag (`--data`, `--calib`, `--eval`, ...) naming a data source
(.npy, .npz, folder, image folder, `pkg.mod:fn`; metavar DATA) and, optionally, the flag that
caps how many of its samples are used (metavar N). The values reach the API as given: a data
argument is a path or `pkg.mod:fn` text, opened by the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DataArgs"]


@dataclass(frozen=True)
class DataArgs:
    """`flag` and, with `limit_flag`, its sample cap (an int, default `limit_default`)."""

    flag: str
    help: str
    required: bool = False
    limit_flag: str | None = None
    limit_help: str = ""
    limit_default: int | None = None

    def add_to(self, parser: Any) -> None:
        """Add the flags to `parser` (or to one of its argument groups)."""
        parser.add_argument(self.flag, required=self.required, metavar="DATA", help=self.help)
        if self.limit_flag is not None:
            parser.add_argument(self.limit_flag, type=int, default=self.limit_default,
                                metavar="N", help=self.limit_help)  # fmt: skip
