"""`verify_bundle`: is this folder exactly the bundle its manifest describes, and do its
artifacts still give the stored outputs?

Checks, in order (the first failing one is raised as a `BundleError` naming the file/field):
1. `manifest.json` exists, parses, has a known `schema_version` and validates (pydantic);
2. the files on disk are exactly `files` (no missing, no extra), each with its size (a
   truncated file) and SHA-256 (a modified byte); every artifact's files, entry, expected
   outputs and the sample inputs are among them;
3. smoke inference: every artifact whose runtime is installed here runs the sample inputs
   through `nnship.runtime` (the device-side loader) and must match its expected outputs
   within its tolerance (`nnship.bundle.tolerance` states the rule). Artifacts
   whose runtime is missing, and TensorRT kits (no engine in a bundle), are skipped with the
   reason.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.bundle.manifest import (
    MANIFEST_NAME,
    ArtifactEntry,
    BundleError,
    Manifest,
    load_manifest,
)
from nnship.bundle.tolerance import OutputCheck
from nnship.core.fileio import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactCheck:
    id: str
    status: str
    """"passed", "failed" or "skipped"."""
    reason: str = ""
    outputs: list[OutputCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "outputs": [o.to_dict() for o in self.outputs],
        }


@dataclass
class VerifyResult:
    """What `verify_bundle` checked. `ok` is True when nothing failed (skips are not failures)."""

    path: Path
    name: str
    model_version: str
    schema_version: int
    files_checked: int
    artifacts: list[ArtifactCheck]

    @property
    def ok(self) -> bool:
        return all(a.status != "failed" for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "name": self.name,
            "model_version": self.model_version,
            "schema_version": self.schema_version,
            "files_checked": self.files_checked,
            "artifacts": [a.to_dict() for a in self.artifacts],
        }


def verify_bundle(path: Path | str, *, smoke: bool = True) -> VerifyResult:
    """Verify the bundle folder `path` (see the module docstring). `smoke=False` checks the
    manifest and the files only. Raises `BundleError` naming the file or field at fault; a
    smoke inference outside tolerance is an error too."""
    root = Path(path).expanduser()
    manifest = load_manifest(root)
    check_files(root, manifest)
    checks = [smoke_test(root, manifest, entry) for entry in manifest.artifacts] if smoke else []
    result = VerifyResult(
        root, manifest.name, manifest.model_version, manifest.schema_version,
        len(manifest.files) + 1, checks,
    )  # fmt: skip
    failed = [c for c in checks if c.status == "failed"]
    if failed:
        raise BundleError(f"'{root}': " + "; ".join(f"artifact {c.id}: {c.reason}" for c in failed))
    return result


def check_files(root: Path, manifest: Manifest) -> None:
    """The folder holds exactly the manifest's files, each of its size and SHA-256."""
    listed = {f.path: f for f in manifest.files}
    if len(listed) != len(manifest.files):
        raise BundleError(f"{root / MANIFEST_NAME}: files lists a path twice")
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.relative_to(root).as_posix() != MANIFEST_NAME
    }
    missing = sorted(set(listed) - on_disk)
    if missing:
        raise BundleError(f"'{root / missing[0]}' is missing (listed in {MANIFEST_NAME})")
    extra = sorted(on_disk - set(listed))
    if extra:
        raise BundleError(
            f"'{root / extra[0]}' is not listed in {MANIFEST_NAME}: the bundle was modified"
        )
    for rel, entry in sorted(listed.items()):
        file = root / rel
        if file.is_symlink() or not file.resolve().is_relative_to(root.resolve()):
            raise BundleError(f"'{file}' is a link: a bundle holds plain files only")
        size = file.stat().st_size
        if size != entry.size:
            what = "truncated" if size < entry.size else "longer than recorded"
            raise BundleError(
                f"'{file}' is {what}: {size} bytes, {MANIFEST_NAME} says {entry.size}"
            )
        if sha256_file(file) != entry.sha256:
            raise BundleError(
                f"'{file}' was modified: its sha256 differs from {MANIFEST_NAME} "
                f"(files[{rel}].sha256)"
            )
    _check_references(root, manifest, listed)


def _check_references(root: Path, manifest: Manifest, listed: dict[str, Any]) -> None:
    where = root / MANIFEST_NAME
    for i, entry in enumerate(manifest.artifacts):
        for f in entry.files:
            if listed.get(f.path) != f:
                raise BundleError(
                    f"{where}: artifacts[{i}] ({entry.id}) file '{f.path}' does not match files"
                )
        paths = {f.path for f in entry.files}
        if entry.entry not in paths:
            raise BundleError(f"{where}: artifacts[{i}].entry '{entry.entry}' is not in its files")
        if entry.expected is not None and entry.expected not in listed:
            raise BundleError(f"{where}: artifacts[{i}].expected '{entry.expected}' is not listed")
    if manifest.samples is not None and manifest.samples.inputs not in listed:
        raise BundleError(f"{where}: samples.inputs '{manifest.samples.inputs}' is not listed")


def smoke_test(root: Path, manifest: Manifest, entry: ArtifactEntry) -> ArtifactCheck:
    """Run one artifact on the sample inputs through `nnship.runtime` (the loader a device
    uses) and compare with its expected outputs (`nnship.bundle.tolerance`'s rule)."""
    if entry.expected is None or entry.tolerance is None or manifest.samples is None:
        why = "no expected outputs stored"
        if entry.backend == "tensorrt":
            why = "TensorRT engines are built on the device (build kit only)"
        return ArtifactCheck(entry.id, "skipped", why)
    package = entry.runtime.package
    if importlib.util.find_spec(package) is None:
        return ArtifactCheck(entry.id, "skipped", f"{package} is not installed here")
    from nnship.runtime import Bundle
    from nnship.runtime.errors import BundleError as RuntimeBundleError

    try:
        bundle = Bundle.load(root)
        why_not = bundle.runnable_targets().get(entry.id)
        if why_not:
            return ArtifactCheck(entry.id, "skipped", why_not)
        result = bundle.smoke_test(entry.id)
    except RuntimeBundleError as exc:
        raise BundleError(f"{entry.id}: the smoke inference failed: {exc}") from None
    tol = entry.tolerance
    outputs = [
        OutputCheck(
            o.name,
            o.passed,
            o.max_abs_error,
            o.min_cosine,
            ""
            if o.passed
            else f"max |diff| {o.max_abs_error:.3g} > atol {tol.atol:.3g} + rtol {tol.rtol:g}"
            f"*|expected| and min cosine {o.min_cosine} < {tol.min_cosine}",
        )
        for o in result.outputs
    ]
    bad = [o for o in outputs if not o.passed]
    if bad:
        reason = "; ".join(
            f"output '{o.name}' differs from {entry.expected}: {o.reason}" for o in bad
        )
        return ArtifactCheck(entry.id, "failed", f"{reason} (on {result.device})", outputs)
    return ArtifactCheck(entry.id, "passed", f"on {result.device}", outputs)
