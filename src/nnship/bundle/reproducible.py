"""Byte-reproducible files: `.npz` archives, the bundle's `.tar.gz`, fixed mtimes.

Same content in -> same bytes out. The only time that may enter is `SOURCE_DATE_EPOCH`
(https://reproducible-builds.org/specs/source-date-epoch/): it sets the files' and the tar
entries' mtimes and the manifest's `built_at`; without it they are 0 and null. Everything else
that archivers usually take from the machine is fixed: entry order (sorted by path), owner
(uid/gid 0, empty user and group names), permissions (0644, 0755 for executables and folders),
the gzip header (mtime = the epoch, no file name, OS byte 255 "unknown"), and the zip entries
of `.npz` files (1980-01-01, the earliest a zip can hold; numpy's `np.savez` stamps the
current time instead).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from nnship.bundle.manifest import BundleError

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755


def source_date_epoch() -> int | None:
    """`SOURCE_DATE_EPOCH` as an int (None when unset); a malformed value is a `BundleError`."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    try:
        epoch = int(value)
    except ValueError:
        raise BundleError(
            f"SOURCE_DATE_EPOCH={value!r} is not an integer number of seconds"
        ) from None
    if epoch < 0:
        raise BundleError(f"SOURCE_DATE_EPOCH={value!r} must not be negative")
    return epoch


def built_at(epoch: int | None) -> str | None:
    """ISO 8601 UTC for the manifest's `built_at`, or None without SOURCE_DATE_EPOCH."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The format of `np.savez` (a zip of `.npy` files, no pickle) with fixed entry dates and
    sorted names, loadable with `np.load(path, allow_pickle=False)`."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(
                buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False
            )
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def file_mode(path: Path) -> int:
    return EXEC_MODE if path.is_dir() or os.access(path, os.X_OK) else FILE_MODE


def normalize_tree(folder: Path, epoch: int | None) -> None:
    """Fixed permissions and mtimes (the epoch, else 0) on every file and folder under `folder`."""
    when = epoch or 0
    paths = sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for path in [*paths, folder]:
        os.chmod(path, file_mode(path))
        os.utime(path, (when, when), follow_symlinks=False)


def write_tar_gz(folder: Path, out: Path, *, arcname: str, epoch: int | None) -> None:
    """`folder` as a reproducible `.tar.gz` at `out`, its entries under `arcname/`."""
    when = epoch or 0

    def entry(path: Path, name: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mtime = when
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = file_mode(path)
        if path.is_dir():
            info.type = tarfile.DIRTYPE
        else:
            info.size = path.stat().st_size
        return info

    paths = sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix())
    for path in paths:
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BundleError(f"'{path}' is not a plain file or folder: cannot archive it")
    with open(out, "wb") as raw:
        # GzipFile writes the name into the header unless it is empty; mtime is fixed
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=when, compresslevel=9) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(entry(folder, arcname))
                for path in paths:
                    info = entry(path, f"{arcname}/{path.relative_to(folder).as_posix()}")
                    if path.is_dir():
                        tar.addfile(info)
                    else:
                        with open(path, "rb") as handle:
                            tar.addfile(info, handle)
