"""The validation-settings group of `validate`: `--recipe` (its `[validate]` section as the
base), the accuracy pass (`--batch-size`, `--max-samples`, `--task`), `--no-latency`, and the
gates and latency groups; it builds the `ValidateConfig` (flags override the recipe)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nnship.cli.options.gates import GateArgs
from nnship.cli.options.latency import LatencyArgs
from nnship.core.errors import DataError

if TYPE_CHECKING:
    from nnship.validate.config import ValidateConfig

__all__ = ["ValidateConfigArgs"]


class ValidateConfigArgs:
    gates = GateArgs("gates (off unless set)", wording="validate")
    latency = LatencyArgs()

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--recipe", type=Path, help="take gates/latency from the recipe's "
                            "[validate] section (flags override it)")  # fmt: skip
        parser.add_argument("--batch-size", type=int, help="accuracy-pass batch size (default 32)")
        parser.add_argument("--max-samples", type=int, help="evaluate at most N samples")
        parser.add_argument("--task", choices=["auto", "classification", "regression"],
                            help="auto (default): 2-D [N, C>=2] outputs are classification logits")  # fmt: skip
        parser.add_argument("--no-latency", action="store_true", help="skip latency measurement")
        self.gates.add_to(parser)
        self.latency.add_to(parser)

    def config(self, args: argparse.Namespace) -> ValidateConfig:
        """The recipe's `[validate]` (or the defaults) with the flags given applied; an invalid
        value is a `DataError` naming the field."""
        from pydantic import ValidationError

        from nnship.validate.commands import read_validate_section
        from nnship.validate.config import ValidateConfig
        from nnship.validate.report import summarize_errors

        base = read_validate_section(args.recipe) if args.recipe else ValidateConfig()
        data = base.model_dump()
        data["gates"].update(self.gates.values(args))
        data["latency"].update(self.latency.overrides(args))
        if args.no_latency:
            data["latency"]["enabled"] = False
        for key in ("batch_size", "max_samples", "task"):
            if getattr(args, key) is not None:
                data[key] = getattr(args, key)
        try:
            return ValidateConfig.model_validate(data)
        except ValidationError as exc:
            raise DataError(f"Bad validate option: {summarize_errors(exc)}") from exc
