"""Atomic file writes: every artifact is written to a temporary name and renamed when complete,
so a build killed mid-way never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nnship.core.errors import OutputPathError


def ensure_writable_dir(directory: Path) -> Path:
    """Create `directory` (and parents) and check it is writable; raise `OutputPathError` if not."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"Cannot create output directory '{directory}': {exc.strerror}"
        ) from exc
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"Output directory '{directory}' is not writable; choose another path with -o"
        )
    return directory


@contextlib.contextmanager
def atomic_path(final: Path | str, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    The temporary name keeps the final suffix (some writers, e.g. ONNX, look at it).
    On error the temporary file (or directory) is removed and `final` is untouched.
    """
    final = Path(final)
    ensure_writable_dir(final.parent if str(final.parent) else Path("."))
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.",
        suffix=(suffix if suffix is not None else final.suffix) + ".tmp",
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise OutputPathError(f"Nothing was written for '{final}'")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write `text` to `path` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path | str, data: Any) -> Path:
    """Write `data` as indented, key-sorted JSON atomically (stable bytes for equal data)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: Path | str, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_size_bytes(path: Path | str) -> int:
    """Size on disk of a file, or of all files under a directory, or of an ONNX file plus its
    external-data files (any sibling named '<stem>*.data')."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    size = path.stat().st_size
    for sibling in path.parent.glob(f"{path.stem}*.data"):
        size += sibling.stat().st_size
    return size


def stable_hash(data: Any, length: int | None = None) -> str:
    """Hex SHA-256 of `data` serialised as key-sorted compact JSON (paths and other non-JSON
    values as strings): equal data gives equal hashes across processes and machines. `length`
    keeps that many leading hex digits (None: all 64). The one content hash of nnship's cache
    keys, version ids and fingerprints."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return digest if length is None else digest[:length]
