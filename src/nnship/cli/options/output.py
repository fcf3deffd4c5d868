"""The output group: `--json OUT.json`, the result of a verb as JSON (the source of truth of
every result: `to_dict()`), written atomically, indented, keys sorted."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JsonArgs"]


@dataclass(frozen=True)
class JsonArgs:
    """`--json OUT.json` with `help`; `write(args, data)` writes `data` there when given."""

    help: str

    def add_to(self, parser: Any) -> None:
        parser.add_argument("--json", type=Path, metavar="OUT.json", help=self.help)

    def write(
        self, args: argparse.Namespace, data: dict[str, Any], *, sort_keys: bool = True
    ) -> None:
        """Write `data` (a result's `to_dict()`) to `--json`, if given."""
        if args.json is None:
            return
        if sort_keys:
            from nnship.core.fileio import write_json_atomic

            write_json_atomic(args.json, data)
        else:
            import json

            from nnship.core.fileio import write_text_atomic

            write_text_atomic(args.json, json.dumps(data, indent=2) + "\n")
