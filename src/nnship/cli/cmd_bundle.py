"""`nnship bundle BUILD_DIR -o DIST` and `nnship bundle verify DIST`."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnship.cli.options import JsonArgs
from nnship.core.errors import NnshipError

_EPILOG = """\
examples:
  nnship bundle build/demo -o dist/demo                 # every finished artifact
  nnship bundle build/demo -o dist/demo --target openvino/int8 --target onnxruntime/int8
  nnship bundle build/demo -o dist/demo --archive       # also dist/demo.tar.gz
  nnship bundle verify dist/demo                        # hashes, schema, smoke inference

Two bundles of the same build folder are byte-identical (folder and .tar.gz); set
SOURCE_DATE_EPOCH to stamp files and the manifest's built_at. A build folder named "verify"
is given as ./verify.
"""

JSON = JsonArgs("write the result as JSON")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bundle",
        help="package a finished build into a reproducible, verifiable bundle; or verify one",
        description=(
            "Package a finished build folder (artifacts, validation results, sample inputs "
            "with expected outputs, hashes, README) into one folder for the device, or "
            "`nnship bundle verify DIST` to check one (exit 2 naming the file or field)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="BUILD_DIR|verify", help="the build folder, or 'verify'")
    parser.add_argument("dist", nargs="?", type=Path, metavar="DIST",
                        help="with 'verify': the bundle folder to check")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, metavar="DIST",
                        help="the bundle folder to write")  # fmt: skip
    parser.add_argument("--target", action="append", dest="targets", metavar="BACKEND/PRECISION",
                        help="artifact to include (repeatable; default: all built)")  # fmt: skip
    parser.add_argument("--samples", type=int, metavar="N",
                        help="sample inputs stored with expected outputs (default 4)")  # fmt: skip
    parser.add_argument("--archive", action="store_true", default=None,
                        help="also write DIST.tar.gz (reproducible)")  # fmt: skip
    parser.add_argument("--no-smoke", action="store_true",
                        help="verify: check manifest and hashes only, run nothing")  # fmt: skip
    JSON.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api

    if args.path == "verify":
        return _run_verify(args)
    output = args.output or args.dist
    if output is None:
        raise NnshipError("nnship bundle: give the bundle folder with -o DIST")
    result = api.bundle(
        args.path, output, targets=args.targets, samples=args.samples, archive=args.archive
    )
    JSON.write(args, result.to_dict())
    print(f"bundle written to {result.path} ({result.manifest.model_version})")
    for artifact_id, size in result.sizes.items():
        print(f"  {artifact_id:<22} {size / 1e6:8.3f} MB")
    print(f"  {'total':<22} {result.size_bytes / 1e6:8.3f} MB")
    if result.archive:
        print(f"archive: {result.archive}")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from nnship import api

    if args.dist is None:
        raise NnshipError("nnship bundle verify: give the bundle folder, e.g. dist/demo")
    result = api.bundle_verify(args.dist, smoke=not args.no_smoke)
    JSON.write(args, result.to_dict())
    print(f"{result.path}: {result.name} {result.model_version}, {result.files_checked} files ok")
    for check in result.artifacts:
        worst = max((o.max_abs_error for o in check.outputs), default=None)
        detail = f"max |diff| {worst:.3g}" if worst is not None else check.reason
        print(f"  {check.id:<22} {check.status:<8} {detail}")
    return 0
