"""`nnship report`: render a saved validation report as HTML and/or Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

_EPILOG = """\
examples:
  nnship report build/report.json --html build/report.html
  nnship report build/report.json --html out.html --markdown out.md
  nnship report build/report.json            # print the Markdown

The HTML is one self-contained file (inline CSS and SVG, no network): summary table, gate
verdicts, latency distributions, accuracy vs latency, per-layer drift (after `nnship explain
--report`), output drift.
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="render a saved report.json as a self-contained HTML page and/or Markdown",
        description=(
            "Render a report written by `nnship validate` / `nnship build` (the JSON is the "
            "source of truth). Without --html or --markdown the Markdown is printed."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("report", type=Path, metavar="REPORT.json", help="the saved report")
    parser.add_argument("--html", type=Path, metavar="OUT.html",
                        help="write the HTML report here (atomically)")  # fmt: skip
    parser.add_argument("--markdown", type=Path, metavar="OUT.md",
                        help="write the Markdown report here (atomically)")  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api

    rendered = api.report(args.report, html=args.html, markdown=args.markdown)
    if args.html is None and args.markdown is None:
        print(rendered.text, end="")
    for kind, path in (("HTML", args.html), ("Markdown", args.markdown)):
        if path is not None:
            print(f"{kind} report written to {path}")
    return 0
