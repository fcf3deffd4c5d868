"""`verify_bundle`: every file's size and hash, no extra or missing file, the schema version,
and a smoke inference in the real runtimes against the stored outputs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnship.bundle.manifest import SCHEMA_VERSION, BundleError
from nnship.bundle.reproducible import write_npz
from nnship.bundle.verify import verify_bundle


@pytest.fixture
def copy(bundled, tmp_path) -> Path:
    target = tmp_path / "tiny"
    shutil.copytree(bundled, target)
    return target


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _save(root: Path, data: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_a_fresh_bundle_verifies_and_runs_in_both_runtimes(bundled):
    result = verify_bundle(bundled)
    status = {c.id: c.status for c in result.artifacts}
    assert status == {
        "onnxruntime/int8": "passed",
        "openvino/int8": "passed",
        "tensorrt/int8": "skipped",
    }
    assert result.ok and result.files_checked == len(_manifest(bundled)["files"]) + 1
    assert all(o.max_abs_error == 0.0 for c in result.artifacts for o in c.outputs)


def test_a_modified_byte_names_the_file(copy):
    xml = copy / "artifacts" / "openvino-int8" / "model.xml"
    data = bytearray(xml.read_bytes())
    data[100] ^= 0x01
    xml.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"openvino-int8/model\.xml' was modified"):
        verify_bundle(copy)


def test_a_truncated_file_names_the_file_and_sizes(copy):
    onnx_file = next((copy / "artifacts" / "onnxruntime-int8").glob("*.onnx"))
    size = onnx_file.stat().st_size
    onnx_file.write_bytes(onnx_file.read_bytes()[: size // 2])
    with pytest.raises(BundleError, match=rf"is truncated: {size // 2} bytes.*says {size}"):
        verify_bundle(copy)


def test_a_missing_or_extra_file_is_named(copy):
    (copy / "samples" / "inputs.npz").unlink()
    with pytest.raises(BundleError, match=r"samples/inputs\.npz' is missing"):
        verify_bundle(copy)


def test_an_extra_file_is_named(copy):
    (copy / "artifacts" / "openvino-int8" / "evil.so").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"evil\.so' is not listed in manifest\.json"):
        verify_bundle(copy)


def test_a_newer_schema_version_says_upgrade(copy):
    data = _manifest(copy)
    data["schema_version"] = SCHEMA_VERSION + 1
    _save(copy, data)
    with pytest.raises(
        BundleError,
        match=rf"schema_version {SCHEMA_VERSION + 1} is newer than this nnship supports "
        rf"\({SCHEMA_VERSION}\): upgrade nnship",
    ):
        verify_bundle(copy)


def test_a_bad_field_is_named(copy):
    data = _manifest(copy)
    data["artifacts"][0]["tolerance"]["atol"] = -1
    _save(copy, data)
    with pytest.raises(BundleError, match=r"artifacts\.0\.tolerance\.atol"):
        verify_bundle(copy)
    (copy / "manifest.json").write_text('{"schema_version": 1, "name": ')
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(copy)


def test_outputs_outside_tolerance_fail_the_smoke_test(copy):
    """Expected outputs that no longer match (hashes updated, so only the run can tell)."""
    data = _manifest(copy)
    entry = next(a for a in data["artifacts"] if a["id"] == "openvino/int8")
    path = copy / entry["expected"]
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    name = next(iter(arrays))
    arrays[name] = arrays[name] + 1.0  # every logit shifted: within no tolerance
    arrays[name][:, 0] += 5.0
    write_npz(path, arrays)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for item in data["files"]:
        if item["path"] == entry["expected"]:
            item.update(sha256=digest, size=path.stat().st_size)
    _save(copy, data)
    with pytest.raises(BundleError, match=rf"artifact openvino/int8: output '{name}' differs"):
        verify_bundle(copy)
    assert verify_bundle(copy, smoke=False).artifacts == []  # hashes alone still pass
