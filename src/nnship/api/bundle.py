"""`nnship bundle` and `nnship bundle verify`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnship.bundle.verify import VerifyResult
from nnship.bundle.writer import BundleResult


def bundle(
    build_dir: str | Path,
    output: str | Path,
    *,
    targets: Sequence[str] | None = None,
    samples: int | None = None,
    archive: bool | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
) -> BundleResult:
    """`nnship bundle`: package a finished build folder into one reproducible bundle folder.

    `output` is the bundle folder (replaced when it holds an earlier bundle). `targets` are
    artifact ids such as "openvino/int8" (default: the build recipe's `[bundle] targets`, else
    every finished artifact). `samples` (default 4), `archive` (also write `<output>.tar.gz`),
    `preprocessing` (a `[bundle.preprocessing]` table) and `labels` default to the build
    recipe's `[bundle]` section. The bundle holds the artifacts, `manifest.json` (hashes,
    specs, validation results with the machine they were measured on), sample inputs with
    each artifact's expected outputs, and a README. Two calls on the same build folder give
    byte-identical bundles (`SOURCE_DATE_EPOCH` sets the only timestamps). Raises
    `BundleError` (exit 2) for a build folder with no finished artifacts or a target it did
    not build.
    """
    from nnship.bundle.writer import write_bundle

    return write_bundle(
        build_dir,
        output,
        targets=list(targets) if targets is not None else None,
        samples=samples,
        preprocessing=dict(preprocessing) if preprocessing is not None else None,
        labels=list(labels) if labels is not None else None,
        archive=archive,
    )


def bundle_verify(path: str | Path, *, smoke: bool = True) -> VerifyResult:
    """`nnship bundle verify`: check a bundle folder against its manifest.

    Checks the manifest's schema and version, that the folder holds exactly the listed files
    with their sizes and SHA-256, and (unless `smoke=False`) runs every artifact whose runtime
    is installed on the stored sample inputs against its expected outputs within its
    tolerance. Raises `BundleError` (exit 2) naming the file or field at fault: a modified
    byte, a truncated, missing or extra file, an unknown or newer schema version, outputs
    outside tolerance.
    """
    from nnship.bundle.verify import verify_bundle

    return verify_bundle(path, smoke=smoke)
