"""Entry point of the `nnship` command.

Every subcommand is a module `nnship.cli.cmd_<name>` exposing
`register(subparsers) -> argparse.ArgumentParser` whose parser has `func=run` set via
`set_defaults(func=...)`; `run(args) -> int` returns the exit code. Modules are discovered,
so adding a command touches no shared file. Flags that commands share come from the argument
groups of `nnship.cli.options`; a command never imports another.

Exit codes: 0 success / all gates pass, 1 a gate failed, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

import nnship
from nnship.core.errors import NnshipError
from nnship.runtime.errors import BundleError as RuntimeBundleError

log = logging.getLogger("nnship")


def _add_common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # On subcommands the defaults are suppressed so flags given before the command survive.
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more output (-vv)"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="warnings only"
    )
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks on errors"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnship",
        description="Compress, export, quantize, lower and validate PyTorch models for deployment.",
        epilog="Exit codes: 0 ok, 1 a validation gate failed, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"nnship {nnship.__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import nnship.cli as cli_pkg

    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("cmd_"):
            continue
        module = importlib.import_module(f"nnship.cli.{info.name}")
        command_parser = module.register(sub)
        _add_common(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Commands that set `pass_unknown_options=True` (bench, validate) receive unknown
        # `--key value` options in `args.unknown_options` and pass them to the backend.
        if not getattr(args, "pass_unknown_options", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.unknown_options = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from nnship.core.progress import configure_logging

    # `pkg.module:factory` sources resolve against the working directory, as with `python -m`
    # (console scripts do not put it on sys.path). Appended, so it never shadows installed
    # packages.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())

    configure_logging(-1 if args.quiet else args.verbose)
    try:
        return int(args.func(args) or 0)
    except (NnshipError, RuntimeBundleError) as exc:  # the device runtime's errors: also exit 2
        if args.debug:
            log.exception("nnship failed")
        print(f"nnship: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nnship: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: say so, traceback with --debug
        if args.debug:
            raise
        print(
            f"nnship: internal error: {type(exc).__name__}: {exc}\n"
            "Re-run with --debug for the traceback, and please report it.",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
