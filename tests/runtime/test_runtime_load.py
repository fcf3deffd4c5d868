"""Bundle.load checks the manifest and every file before a runtime reads one."""

from __future__ import annotations

import pytest

from nnship.runtime import Bundle, BundleError


def test_load_reads_the_declared_model(bundle_dir):
    bundle = Bundle.load(bundle_dir)
    assert bundle.name == "tiny"
    assert bundle.targets == [
        "onnxruntime/fp32",
        "onnxruntime/int8",
        "openvino/fp32",
        "openvino/int8",
    ]
    assert [t.name for t in bundle.inputs] == ["x"] and bundle.inputs[0].shape == (
        "batch",
        3,
        16,
        16,
    )
    assert bundle.labels == ["red", "green", "blue", "dark", "bright"]
    assert bundle.preprocessing.resize == (20, 24) and bundle.preprocessing.crop == (16, 16)


def test_load_accepts_the_manifest_path_for_its_folder(bundle_dir):
    assert Bundle.load(bundle_dir / "manifest.json").root == bundle_dir


def test_a_modified_byte_is_refused_naming_the_file(bundle_copy):
    path = bundle_copy.path / "artifacts/onnxruntime-fp32/model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the hash can tell
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"onnxruntime-fp32/model\.onnx: modified: its SHA-256"):
        Bundle.load(bundle_copy.path)


def test_a_truncated_file_is_refused_naming_the_file(bundle_copy):
    path = bundle_copy.path / "artifacts/openvino-int8/model.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(BundleError, match=r"openvino-int8/model\.bin: truncated: \d+ bytes"):
        Bundle.load(bundle_copy.path)


def test_a_missing_file_is_refused_naming_the_file(bundle_copy):
    (bundle_copy.path / "samples/expected.openvino-fp32.npz").unlink()
    with pytest.raises(BundleError, match=r"expected\.openvino-fp32\.npz: missing"):
        Bundle.load(bundle_copy.path)


def test_a_folder_without_manifest_is_not_a_bundle(bundle_copy, tmp_path):
    (bundle_copy.path / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: missing; .* not a bundle"):
        Bundle.load(bundle_copy.path)
    with pytest.raises(BundleError, match="no such bundle folder"):
        Bundle.load(tmp_path / "nowhere")


def test_a_manifest_that_is_not_json_is_refused(bundle_copy):
    (bundle_copy.path / "manifest.json").write_text('{"schema_version": 1,')
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON \(line 1"):
        Bundle.load(bundle_copy.path)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (2, r"schema_version: 2 is newer than this runtime reads \(1\).*upgrade nnship-runtime"),
        (0, r"schema_version: unknown version 0"),
        ("1", r"schema_version: expected an integer"),
    ],
)
def test_an_unknown_or_newer_schema_version_is_refused(bundle_copy, version, message):
    manifest = bundle_copy.manifest()
    manifest["schema_version"] = version
    bundle_copy.save(manifest)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle_copy.path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["artifacts"][1]["files"][0].update(sha256="abc"),
         r"artifacts\[1\]\.files\[0\]\.sha256: 'abc' is not a SHA-256"),
        (lambda m: m["artifacts"][0].update(entry="../outside.onnx"),
         r"artifacts\[0\]\.entry: '\.\./outside\.onnx' is not a relative path inside"),
        (lambda m: m["inputs"][0].update(dtype="float33"), r"inputs\[0\]\.dtype: unknown dtype"),
        (lambda m: m["artifacts"][2].pop("entry"), r"artifacts\[2\]\.entry: missing"),
        (lambda m: m["preprocessing"].update(layout="CHW"), r"preprocessing\.layout: 'CHW'"),
        (lambda m: m["preprocessing"].update(mean=[0.5, 0.5]), r"preprocessing\.mean: 2 values for 3"),
        (lambda m: m["files"].pop(0), r"not in the bundle's files list"),
    ],
)  # fmt: skip
def test_a_malformed_field_is_named(bundle_copy, edit, message):
    manifest = bundle_copy.manifest()
    edit(manifest)
    bundle_copy.save(manifest, refresh_files=False)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle_copy.path)


def test_an_unlisted_hash_change_is_caught_before_any_runtime_reads_it(bundle_copy):
    """A bundle whose model bytes are garbage of the right size: the error is the hash,
    never a parser error from inside the runtime."""
    path = bundle_copy.path / "artifacts/openvino-fp32/model.xml"
    path.write_bytes(b"\0" * path.stat().st_size)
    with pytest.raises(BundleError, match="modified"):
        Bundle.load(bundle_copy.path)


def test_bundle_error_is_a_value_error():
    assert issubclass(BundleError, ValueError) and BundleError.exit_code == 2
