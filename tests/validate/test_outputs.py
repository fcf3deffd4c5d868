"""Saved run outputs: round trip, replay by sample hash, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _validate_helpers import classification_data, linear_classifier

from nnship.core.errors import DataError, ReportError
from nnship.validate.outputs import SavedOutputs, SavedOutputsRunner, save_outputs


@pytest.fixture()
def saved(tmp_path):
    _, _, make = linear_classifier()
    data = classification_data(labels=np.arange(40) % 4)
    path = save_outputs(tmp_path / "run.npz", make(), data.iter_batches(16), label="torch/fp32",
                        data_fingerprint=data.fingerprint())  # fmt: skip
    return path, make, data


def test_round_trip_keeps_outputs_labels_and_manifest(saved) -> None:
    path, make, data = saved
    loaded = SavedOutputs(path)
    expected = make().run(data._inputs)["output"]
    assert np.array_equal(loaded.outputs["output"], expected)
    assert np.array_equal(loaded.labels, np.arange(40) % 4)
    manifest = loaded.manifest
    assert manifest["label"] == "torch/fp32" and manifest["num_samples"] == 40
    assert manifest["data_fingerprint"] == data.fingerprint()
    assert manifest["environment"]["hardware_id"]
    assert manifest["inputs"] == [{"name": "x", "shape": ["batch", 6], "dtype": "float32"}]


def test_replay_at_another_batch_size_and_order(saved) -> None:
    path, make, data = saved
    runner = SavedOutputsRunner(path)
    x = data._inputs["x"]
    order = np.array([39, 0, 17])
    out = runner.run({"x": x[order]})["output"]
    assert np.array_equal(out, make().run({"x": x[order]})["output"])
    assert runner.output_names == ["output"]


def test_unknown_sample_is_refused(saved) -> None:
    path, _, data = saved
    x = data._inputs["x"][:2].copy()
    x[1, 0] += 1e-3
    with pytest.raises(DataError, match=r"Sample 1 .* not among the 40 samples"):
        SavedOutputsRunner(path).run({"x": x})


def test_mismatched_pair_and_missing_manifest_are_refused(saved, tmp_path) -> None:
    path, _, _ = saved
    manifest = path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data["npz_sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match="do not match their manifest"):
        SavedOutputs(path)
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="format_version 99"):
        SavedOutputs(path)
    manifest.unlink()
    with pytest.raises(DataError, match="Manifest .* does not exist"):
        SavedOutputs(path)


def test_pickled_arrays_never_load(tmp_path) -> None:
    _, _, make = linear_classifier()
    data = classification_data(n=4)
    path = save_outputs(tmp_path / "run.npz", make(), data.iter_batches(4))
    manifest = json.loads(path.with_suffix(".json").read_text())
    with open(path, "wb") as handle:  # same key, now an object array (needs pickle)
        np.savez(handle, sample_hashes=np.zeros((4, 16), np.uint8),
                 output_0=np.array([object()] * 4, dtype=object))  # fmt: skip
    from nnship.core.fileio import sha256_file

    manifest["npz_sha256"] = sha256_file(path)
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="cannot be read"):
        SavedOutputs(path)
