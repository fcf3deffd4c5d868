"""The stage cache: content-addressed entries that several build folders share."""

from __future__ import annotations

from nnship.core import TensorSpec
from nnship.core.fileio import sha256_file
from nnship.stages.cache import StageCache, StageStamp


def _stamp(cache: StageCache, build, inputs):
    return StageStamp(cache, build, build / "export", "export", inputs)


def test_a_second_build_folder_gets_the_files_and_its_own_paths(tmp_path):
    cache = StageCache(tmp_path / "cache")
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "export").mkdir(parents=True)
    model = first / "export" / "model.onnx"
    model.write_bytes(b"onnx bytes")
    _stamp(cache, first, {"model": "m1"}).record([model], {"path": str(model), "opset": 17})

    found = _stamp(cache, second, {"model": "m1"}).lookup()

    assert found == {"path": str(second / "export" / "model.onnx"), "opset": 17}
    assert (second / "export" / "model.onnx").read_bytes() == b"onnx bytes"


def test_other_inputs_or_another_stage_folder_miss(tmp_path):
    cache = StageCache(tmp_path / "cache")
    build = tmp_path / "a"
    (build / "export").mkdir(parents=True)
    (build / "export" / "f").write_text("x")
    _stamp(cache, build, {"model": "m1"}).record([build / "export" / "f"], {})
    assert _stamp(cache, build, {"model": "m2"}).lookup() is None
    other_dir = StageStamp(cache, build, build / "backends", "export", {"model": "m1"})
    assert other_dir.lookup() is None


def test_a_changed_cached_file_is_not_reused(tmp_path):
    cache = StageCache(tmp_path / "cache")
    build = tmp_path / "a"
    (build / "export").mkdir(parents=True)
    out = build / "export" / "f"
    out.write_text("right")
    stamp = _stamp(cache, build, {"k": 1})
    stamp.record([out], {"ok": True})
    cached = next((tmp_path / "cache").rglob("files/export/f"))
    out.unlink()  # the build file goes; the cache entry alone must hold the bytes
    cached.write_text("tampered")
    assert stamp.lookup() is None


def test_a_changed_build_file_is_restored_from_the_cache(tmp_path):
    cache = StageCache(tmp_path / "cache")
    build = tmp_path / "a"
    (build / "export").mkdir(parents=True)
    out = build / "export" / "f"
    out.write_text("right")
    digest = sha256_file(out)
    stamp = _stamp(cache, build, {"k": 1})
    stamp.record([out], {})
    out.unlink()
    out.write_text("edited by hand")  # a new file, the cached bytes stay intact
    assert stamp.lookup() == {}
    assert sha256_file(out) == digest


def test_a_typed_result_is_stored_as_to_dict_and_restored_by_from_dict(tmp_path):
    from nnship.stages.export import ExportStageResult, ExportSummary

    cache = StageCache(tmp_path / "cache")
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "export").mkdir(parents=True)
    model = first / "export" / "model.onnx"
    model.write_bytes(b"onnx bytes")
    specs = (TensorSpec("x", ("batch", 3), "float32"),)
    result = ExportStageResult(model, specs, ExportSummary(17, "dynamo", 1e-6, ("y",)))
    _stamp(cache, first, {"model": "m1"}).record([model], result)

    found = _stamp(cache, second, {"model": "m1"}).lookup(ExportStageResult.from_dict)

    assert found == ExportStageResult(second / "export" / "model.onnx", specs, result.summary)


def test_a_stored_result_that_does_not_restore_is_a_miss(tmp_path):
    from nnship.stages.export import ExportSummary

    cache = StageCache(tmp_path / "cache")
    build = tmp_path / "a"
    (build / "export").mkdir(parents=True)
    (build / "export" / "f").write_text("x")
    stamp = _stamp(cache, build, {"k": 1})
    stamp.record([build / "export" / "f"], {"opset": 17})  # no exporter, no output names

    assert stamp.lookup(ExportSummary.from_dict) is None
