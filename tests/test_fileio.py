"""Atomic writes: a failed write leaves neither the final file nor a temporary."""

from __future__ import annotations

import os

import pytest

from nnship.core.errors import OutputPathError
from nnship.core.fileio import atomic_path, write_json_atomic


def test_atomic_path_renames_only_on_success(tmp_path) -> None:
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed mid-way")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"


def test_json_is_stable_for_equal_data(tmp_path) -> None:
    a = write_json_atomic(tmp_path / "a.json", {"b": 1, "a": [1.5, 2]})
    b = write_json_atomic(tmp_path / "b.json", {"a": [1.5, 2], "b": 1})
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_is_a_clear_error(tmp_path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(OutputPathError, match="not writable"):
        write_json_atomic(locked / "x.json", {})


def test_uncreatable_directory_is_a_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputPathError, match="Cannot create output directory"):
        write_json_atomic(blocker / "sub" / "x.json", {})
