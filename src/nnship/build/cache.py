"""Stage reuse for `nnship build`: a small stamp JSON per stage records the hashes of the
stage's inputs and of the files it wrote; a later build whose inputs hash the same, and whose
files are still there unchanged, reuses them instead of recomputing."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from nnship.fileio import sha256_file, write_json_atomic

log = logging.getLogger(__name__)

STAMP_NAME = "stamp.json"
STAMP_VERSION = 1


def stable_hash(data: Any) -> str:
    """SHA-256 of `data` serialised as key-sorted JSON (paths and other objects as strings)."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class StageStamp:
    """The stamp of one stage, kept in `<stage_dir>/<name>.stamp.json`.

    `inputs` is any JSON-able description of what the stage's result depends on (hashes of
    input files, config dicts, seeds). `lookup()` returns the stored result when the inputs
    match and every recorded output file still has its recorded hash; `record()` stores a
    finished run (call it only after every output was written).
    """

    def __init__(self, stage_dir: Path, name: str, inputs: dict[str, Any]) -> None:
        self.path = Path(stage_dir) / f"{name}.{STAMP_NAME}"
        self.name = name
        self.inputs = inputs
        self.key = stable_hash(inputs)

    def lookup(self) -> dict[str, Any] | None:
        """The stored result of a finished identical run, or None."""
        if not self.path.is_file():
            return None
        try:
            stamp = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if stamp.get("version") != STAMP_VERSION or stamp.get("key") != self.key:
            log.debug("stage %s: inputs changed, recomputing", self.name)
            return None
        for rel, digest in stamp.get("outputs", {}).items():
            path = self.path.parent / rel
            if not path.is_file() or sha256_file(path) != digest:
                log.debug("stage %s: output %s missing or changed, recomputing", self.name, rel)
                return None
        return dict(stamp.get("result", {}))

    def invalidate(self) -> None:
        """Forget a previous run (before recomputing, so a crash never leaves a stale stamp)."""
        self.path.unlink(missing_ok=True)

    def record(self, outputs: list[Path], result: dict[str, Any]) -> None:
        """Store a finished run: the hash of every output file (inside the stage folder or
        below it) and a JSON-able `result` returned by later `lookup()`s."""
        hashes = {}
        for out in outputs:
            out = Path(out)
            files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
            for file in files:
                if file.name.endswith(STAMP_NAME):
                    continue
                rel = os.path.relpath(file.resolve(), self.path.parent.resolve())
                hashes[str(rel)] = sha256_file(file)
        write_json_atomic(
            self.path,
            {
                "version": STAMP_VERSION,
                "stage": self.name,
                "key": self.key,
                "inputs": self.inputs,
                "outputs": hashes,
                "result": result,
            },
        )
