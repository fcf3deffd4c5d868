"""`write_bundle`: what a bundle holds, reproducibility, atomicity, bad build folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnship.bundle.manifest import MANIFEST_NAME, BundleError, load_manifest
from nnship.bundle.verify import verify_bundle
from nnship.bundle.writer import write_bundle


def _tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file's bytes, mode and mtime (and every folder's mode and mtime)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        data = path.read_bytes() if path.is_file() else b""
        out[path.relative_to(root).as_posix()] = (data, st.st_mode, int(st.st_mtime))
    return out


def test_bundle_holds_artifacts_specs_validation_samples_and_hashes(bundled):
    manifest = load_manifest(bundled)
    assert [a.id for a in manifest.artifacts] == [
        "onnxruntime/int8", "openvino/int8", "tensorrt/int8",
    ]  # fmt: skip
    assert manifest.inputs[0].name == "x" and manifest.inputs[0].shape[0] == "batch"
    assert manifest.outputs[0].shape[-1] == 10
    ov = manifest.artifact("openvino/int8")
    assert {Path(f.path).suffix for f in ov.files} == {".xml", ".bin"}
    assert ov.validation.metrics["top1_agreement"] > 90
    assert ov.validation.fingerprint["cpu"] and ov.validation.fingerprint["flags"]
    assert ov.validation.gates["passed"] is True
    assert 0 < ov.tolerance.atol < 1 and 0.99 < ov.tolerance.min_cosine < 1
    trt = manifest.artifact("tensorrt/int8")
    assert trt.expected is None and trt.tolerance is None
    assert {Path(f.path).name for f in trt.files} >= {"build_engine.py", "build_spec.json"}
    assert trt.build_kit["trtexec"].startswith("trtexec --onnx=")
    for key in ("model_source", "weights", "float_onnx", "calibration", "evaluation"):
        assert manifest.input_hashes[key].startswith("sha256:"), key
    assert manifest.samples.source == "evaluation" and manifest.samples.count == 4
    with np.load(bundled / manifest.samples.inputs, allow_pickle=False) as data:
        assert data["x"].shape == (4, 1, 8, 8)
    # the ORT optimized copy (made for the build machine) and artifact.json are not shipped
    names = {Path(f.path).name for f in manifest.files}
    assert not any(n.endswith(".ort.onnx") or n == "artifact.json" for n in names)
    assert manifest.built_at is None
    readme = (bundled / "README.md").read_text()
    assert "nnship.runtime" in readme and "openvino/int8" in readme and "AMD" not in readme[:0]


def test_expected_outputs_are_what_the_runtime_gives(bundled):
    import onnxruntime as ort

    manifest = load_manifest(bundled)
    entry = manifest.artifact("onnxruntime/int8")
    inputs = dict(np.load(bundled / "samples/inputs.npz", allow_pickle=False))
    session = ort.InferenceSession(str(bundled / entry.entry), providers=["CPUExecutionProvider"])
    got = session.run(None, inputs)[0]
    want = np.load(bundled / entry.expected, allow_pickle=False)[manifest.outputs[0].name]
    np.testing.assert_allclose(got, want, atol=entry.tolerance.atol, rtol=entry.tolerance.rtol)


def test_two_bundles_of_one_build_are_byte_identical(built, tmp_path):
    targets = ["onnxruntime/int8", "openvino/fp32"]
    a = write_bundle(built, tmp_path / "a" / "tiny", targets=targets, archive=True)
    b = write_bundle(built, tmp_path / "b" / "tiny", targets=targets, archive=True)
    assert _tree(a.path) == _tree(b.path)
    assert a.archive.read_bytes() == b.archive.read_bytes()
    import tarfile

    with tarfile.open(a.archive) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    header = a.archive.read_bytes()[:10]
    assert header[3] & 0x08 == 0  # no file name in the gzip header
    assert int.from_bytes(header[4:8], "little") == 0  # gzip mtime


def test_source_date_epoch_changes_only_mtimes_and_built_at(built, tmp_path, monkeypatch):
    targets = ["onnxruntime/int8"]
    plain = write_bundle(built, tmp_path / "plain" / "tiny", targets=targets)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dated = write_bundle(built, tmp_path / "dated" / "tiny", targets=targets, archive=True)
    a, b = _tree(plain.path), _tree(dated.path)
    assert a.keys() == b.keys()
    for name in a:
        assert b[name][2] == 1700000000 and a[name][2] == 0
        if name != MANIFEST_NAME:
            assert a[name][:2] == b[name][:2], name
    ma = json.loads(a[MANIFEST_NAME][0])
    mb = json.loads(b[MANIFEST_NAME][0])
    assert mb.pop("built_at") == "2023-11-14T22:13:20Z" and ma.pop("built_at") is None
    assert ma == mb
    header = dated.archive.read_bytes()[:10]
    assert int.from_bytes(header[4:8], "little") == 1700000000


def test_a_failure_mid_write_leaves_no_bundle_and_keeps_the_old_one(built, tmp_path, monkeypatch):
    import nnship.bundle.writer as writer

    out = tmp_path / "dist" / "tiny"
    write_bundle(built, out, targets=["onnxruntime/int8"])
    before = _tree(out)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # like Ctrl-C while the bundle is being written

    monkeypatch.setattr(writer, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(built, out, targets=["openvino/int8"])
    assert _tree(out) == before  # the earlier bundle is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no temporary left
    monkeypatch.setattr(writer, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(built, tmp_path / "fresh" / "tiny", targets=["openvino/int8"])
    assert not (tmp_path / "fresh" / "tiny").exists()


def test_a_killed_write_leaves_a_folder_verify_refuses(built, tmp_path, monkeypatch):
    """A SIGKILL leaves the temporary folder behind: it has no manifest.json (written last)."""
    import nnship.bundle.writer as writer

    monkeypatch.setattr(writer, "write_manifest", lambda *a, **k: None)  # killed right before
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # and nothing cleaned up
    monkeypatch.setattr(writer, "_replace", lambda tmp, out: None)
    write_bundle(built, tmp_path / "tiny", targets=["onnxruntime/int8"])
    monkeypatch.undo()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tiny.")]
    assert len(leftovers) == 1 and (leftovers[0] / "samples" / "inputs.npz").is_file()
    with pytest.raises(BundleError, match="manifest.json' is missing"):
        verify_bundle(leftovers[0])


def test_target_not_built_names_it_and_what_was_built(built, tmp_path):
    with pytest.raises(BundleError, match=r"openvino/fp16 were not built .*onnxruntime/int8"):
        write_bundle(built, tmp_path / "x", targets=["ov/fp16"])
    with pytest.raises(BundleError, match="not an artifact id"):
        write_bundle(built, tmp_path / "x", targets=["openvino"])
    assert not (tmp_path / "x").exists()


def test_build_folder_without_finished_artifacts(built, tmp_path):
    with pytest.raises(BundleError, match="report.json' is missing"):
        write_bundle(tmp_path, tmp_path / "x")
    copy = tmp_path / "copy"
    shutil.copytree(built / "report", copy / "report")
    (copy / "backends" / "openvino" / "int8").mkdir(parents=True)  # an interrupted compile
    with pytest.raises(BundleError, match="no finished artifacts"):
        write_bundle(copy, tmp_path / "x")
    with pytest.raises(BundleError, match="does not exist"):
        write_bundle(tmp_path / "nope", tmp_path / "x")


def test_a_moved_build_folder_still_bundles_and_a_changed_artifact_is_refused(built, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(built, moved, ignore=shutil.ignore_patterns("cache"))
    result = write_bundle(moved, tmp_path / "d", targets=["openvino/int8", "tensorrt/int8"])
    assert verify_bundle(result.path).ok
    model = moved / "backends" / "onnxruntime" / "int8"
    onnx_file = next(p for p in model.glob("*.onnx") if not p.name.endswith(".ort.onnx"))
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="changed since the build validated it"):
        write_bundle(moved, tmp_path / "e", targets=["onnxruntime/int8"])


def test_preprocessing_must_fit_the_input(built, tmp_path):
    with pytest.raises(BundleError, match="RGB gives 3 channel"):
        write_bundle(built, tmp_path / "p", targets=["onnxruntime/int8"],
                     preprocessing={"color": "RGB"})  # fmt: skip
    with pytest.raises(BundleError, match=r"preprocessing\.resize"):
        write_bundle(built, tmp_path / "p", targets=["onnxruntime/int8"],
                     preprocessing={"resize": [8]})  # fmt: skip
    ok = write_bundle(built, tmp_path / "q", targets=["onnxruntime/int8"], labels=list("0123456789"),
                      preprocessing={"color": "GRAY", "resize": [8, 8], "scale": 1 / 16})  # fmt: skip
    assert ok.manifest.preprocessing.color == "GRAY" and ok.manifest.labels[3] == "3"


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(built, tmp_path):
    from nnship.core.errors import OutputPathError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputPathError, match="not a bundle"):
        write_bundle(built, tmp_path / "mine", targets=["onnxruntime/int8"])
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_sigkill_before_the_manifest_leaves_nothing_verify_accepts(built, tmp_path):
    """A real `kill -9` of the writing process at the worst moment: every file but the
    manifest written. The target never appears; the hidden temporary folder is refused."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "dist" / "tiny"
    code = (
        "import os, signal, sys\n"
        "import nnship.bundle.writer as w\n"
        "w.write_manifest = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"w.write_bundle({str(built)!r}, {str(out)!r}, targets=['onnxruntime/int8'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    (leftover,) = [p for p in out.parent.iterdir() if p.name.startswith(".tiny.")]
    assert (leftover / "README.md").is_file() and not (leftover / MANIFEST_NAME).exists()
    with pytest.raises(BundleError, match="not a finished bundle"):
        verify_bundle(leftover)
    # the next bundle writes over the debris-free target and verifies
    assert verify_bundle(write_bundle(built, out, targets=["onnxruntime/int8"]).path).ok


@pytest.mark.slow
def test_two_independent_builds_give_byte_identical_bundles(built, tmp_path):
    """The same recipe and seed built twice by `nnship build` (separate processes, separate
    folders and stage caches; latency off, the only figure that differs between runs) give
    the same bundle bytes: ONNX, OpenVINO IR, build kit, expected outputs, manifest.

    In ONE process a second OpenVINO conversion names its generated layers from a
    process-wide counter (`Constant_11253` vs `Constant_40604`), so the `.xml` of an in-process
    rebuild differs in those names only (same graph, same `.bin`); see docs/bundle.md."""
    import os
    import subprocess
    import sys

    recipe = built.parent / "recipe.toml"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nnship.cli.main",
                "-q",
                "build",
                str(recipe),
                "-o",
                str(tmp_path / name),
            ],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for name in ("one", "two")
    ]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
    targets = ["onnxruntime/int8", "openvino/int8", "openvino/fp32", "tensorrt/int8"]
    a = write_bundle(tmp_path / "one", tmp_path / "a" / "tiny", targets=targets, archive=True)
    b = write_bundle(tmp_path / "two", tmp_path / "b" / "tiny", targets=targets, archive=True)
    assert _tree(a.path) == _tree(b.path)
    assert a.archive.read_bytes() == b.archive.read_bytes()
