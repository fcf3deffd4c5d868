"""The stage cache of `nnship build`: content-addressed and shareable between builds.

A stage's result is stored under the hash of its inputs (`<cache>/<key[:2]>/<key>/`): the
stage's output files (relative to the build folder that wrote them) and its typed result as
`result.to_dict()`, restored with the type's `from_dict` (`StageStamp.lookup(Type.from_dict)`),
so no stage reads a stored dict by its keys.
A later stage whose inputs hash the same, in this build folder or in any other build that uses
the same cache folder (`nnship build --cache DIR`), finds the entry, puts its files in place in
its own build folder (hard links where the file system allows, else copies) and reuses the
result instead of recomputing. Paths inside a stored result that point into the build folder
are stored relative to it, so they point into the reusing build's folder.

An entry is written to a temporary folder and renamed when complete, and every file is checked
against its recorded SHA-256 before it is reused, so a crash or an edited file never yields a
stale result.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

from nnship.core.fileio import sha256_file, stable_hash, write_json_atomic

log = logging.getLogger(__name__)

ENTRY_NAME = "entry.json"
CACHE_VERSION = 3
"""3: stage results are typed (`to_dict`/`from_dict`); export, calibration and the baseline
store their paths. Entries of other versions are recomputed, never read."""
_BUILD = "@build@"
"""Stands for the build folder in stored results (a result's paths move with the build)."""

ResultT = TypeVar("ResultT")


class StoredResult(Protocol):
    """A typed stage result: `to_dict()` is JSON-able, and its type's `from_dict` restores it."""

    def to_dict(self) -> dict[str, Any]: ...


Restore = Callable[[dict[str, Any]], ResultT]
"""How a stored result becomes typed again: the result type's `from_dict`."""


def _relocate(value: Any, old: str, new: str) -> Any:
    """`value` with every string that starts with the folder `old` re-rooted at `new`."""
    if isinstance(value, str):
        if value == old or value.startswith(old + os.sep) or value.startswith(old + "/"):
            return new + value[len(old) :]
        return value
    if isinstance(value, dict):
        return {k: _relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, old, new) for v in value]
    return value


def _place(source: Path, target: Path) -> None:
    """Put `source`'s bytes at `target` atomically: a hard link where possible, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.cache.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _same_file(a: Path, b: Path, digest: str) -> bool:
    if not b.is_file():
        return False
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return sha256_file(b) == digest


class StageCache:
    """A folder of finished stage results keyed by the hash of their inputs.

    Several builds may share one folder; entries are immutable once written (a rename makes
    them visible), so concurrent builds at worst compute the same entry twice.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str, build_root: Path) -> dict[str, Any] | None:
        """The stored result for `key` with its files placed in `build_root`, or None when
        there is no complete, unchanged entry."""
        entry = self.entry_dir(key)
        try:
            stored = json.loads((entry / ENTRY_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if stored.get("version") != CACHE_VERSION or stored.get("key") != key:
            return None
        outputs: dict[str, str] = stored.get("outputs", {})
        for rel, digest in outputs.items():
            cached = entry / "files" / rel
            if not cached.is_file() or sha256_file(cached) != digest:
                log.debug("cache entry %s: %s missing or changed, recomputing", key[:12], rel)
                return None
        build_root = Path(build_root).absolute()
        for rel, digest in outputs.items():
            target = build_root / rel
            if not _same_file(entry / "files" / rel, target, digest):
                _place(entry / "files" / rel, target)
        return _relocate(dict(stored.get("result", {})), _BUILD, str(build_root))

    def store(
        self,
        key: str,
        stage: str,
        inputs: dict[str, Any],
        outputs: list[Path],
        result: dict[str, Any],
        build_root: Path,
    ) -> None:
        """Record a finished stage: its output files (inside `build_root`; folders are taken
        whole) and its JSON-able `result`. Call it only after every output was written."""
        build_root = Path(build_root).absolute()
        entry = self.entry_dir(key)
        tmp = entry.with_name(f".{key}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        hashes: dict[str, str] = {}
        try:
            for out in outputs:
                out = Path(out).absolute()
                files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
                for file in files:
                    rel = file.relative_to(build_root).as_posix()
                    hashes[rel] = sha256_file(file)
                    _place(file, tmp / "files" / rel)
            write_json_atomic(
                tmp / ENTRY_NAME,
                {
                    "version": CACHE_VERSION,
                    "stage": stage,
                    "key": key,
                    "inputs": inputs,
                    "outputs": hashes,
                    "result": _relocate(result, str(build_root), _BUILD),
                },
            )
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class StageStamp:
    """One stage's place in the cache: `key` is the hash of the stage's name, its folder in
    the build (relative) and its `inputs`; `found` the reused result or None; `record()` stores
    a finished run."""

    def __init__(
        self,
        cache: StageCache,
        build_root: Path,
        stage_dir: Path,
        name: str,
        inputs: dict[str, Any],
    ) -> None:
        self.cache = cache
        self.build_root = Path(build_root).absolute()
        self.name = name
        self.inputs = inputs
        where = Path(stage_dir).absolute().relative_to(self.build_root).as_posix()
        self.key = stable_hash({"stage": name, "dir": where, "inputs": inputs})

    @overload
    def lookup(self) -> dict[str, Any] | None: ...

    @overload
    def lookup(self, restore: Restore[ResultT]) -> ResultT | None: ...

    def lookup(self, restore: Restore[Any] | None = None) -> Any:
        """The stored result restored with `restore` (the result type's `from_dict`), or None
        when there is none or it does not restore (it is then recomputed). Without `restore`,
        the stored dict: the compress schedule restores its phase summaries itself, around the
        module it loads from the phase's `.pt2` (`PruneResult.from_dict(summary, module)`)."""
        found = self.cache.lookup(self.key, self.build_root)
        if found is None or restore is None:
            return found
        try:
            return restore(found)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cache entry %s does not restore (%s); recomputing", self.key[:12], exc)
            return None

    def record(self, outputs: list[Path], result: StoredResult | dict[str, Any]) -> None:
        """Store a finished run: its `outputs` and its typed `result` (as `to_dict()`)."""
        data = result if isinstance(result, dict) else result.to_dict()
        self.cache.store(self.key, self.name, self.inputs, outputs, data, self.build_root)
