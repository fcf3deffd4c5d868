"""`method = "auto"`: every candidate scored against the float model, the best kept and
recorded, held-out calibration data when there is no evaluation data, explicit methods skip
the search."""

import json

import numpy as np
import onnx
import pytest
from conftest import MinMaxTable

from nnship.cli.main import main
from nnship.quantize import QuantizeResult, make_config, quantize
from nnship.quantize.pipeline import preprocess
from nnship.quantize.selection import SampleWindow, fidelity_score
from nnship.sources import ArrayData


class RiggedTable(MinMaxTable):
    """MinMaxTable whose "percentile" ranges are shrunk to 5 % (a clearly bad method) and whose
    "mse" ranges equal minmax (a duplicate candidate)."""

    def ranges(self, method="minmax", **params):
        out = super().ranges(method, **params)
        if method == "percentile":
            return {k: (lo * 0.05, hi * 0.05) for k, (lo, hi) in out.items()}
        if method == "mse":
            return super().ranges("minmax", **params)
        return out


@pytest.fixture(scope="module")
def rigged(cnn_path, cnn_data, tmp_path_factory):
    pre = tmp_path_factory.mktemp("pre") / "pre.onnx"
    onnx.save(preprocess(onnx.load(str(cnn_path))), str(pre))
    return RiggedTable(pre, cnn_data)


def _auto(methods, **kw):
    return make_config(auto_methods=methods, equalization="off", **kw)


def test_auto_picks_the_best_candidate_and_records_every_score(
    cnn_path, cnn_data, rigged, tmp_path
):
    data = ArrayData(cnn_data)
    cfg = _auto(["percentile", "minmax", "entropy"])
    res = quantize(cnn_path, tmp_path / "q.onnx", cfg, table=rigged, eval_data=data)
    sel = res.method_selection
    assert sel["mode"] == "auto" and sel["chosen"] == res.method
    cands = {c["method"]: c for c in sel["candidates"]}
    assert list(cands) == ["percentile", "minmax", "entropy"]
    for cand in cands.values():
        assert {"top1_agreement", "cosine", "sqnr_db", "score"} <= set(cand)
    assert res.method != "percentile"
    assert cands["percentile"]["cosine"] < min(cands["minmax"]["cosine"], 0.99)
    assert res.method == max(cands.values(), key=lambda c: tuple(c["score"]))["method"]
    assert sel["samples"] == 48 and sel["data"].startswith("evaluation data")
    # The written model is the chosen method's: same metrics as asking for it explicitly.
    explicit = quantize(
        cnn_path, tmp_path / "e.onnx", make_config(method=res.method, equalization="off"),
        table=rigged, eval_data=data,
    )  # fmt: skip
    assert explicit.metrics == res.metrics
    assert explicit.method_selection == {"mode": "explicit", "chosen": res.method}
    back = QuantizeResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.method_selection == sel


def test_candidates_with_identical_ranges_share_one_measurement(
    cnn_path, cnn_data, rigged, tmp_path
):
    rigged.calls.clear()
    res = quantize(cnn_path, tmp_path / "q.onnx", _auto(["minmax", "mse"]), table=rigged,
                   eval_data=ArrayData(cnn_data))  # fmt: skip
    cands = res.method_selection["candidates"]
    assert cands[1]["same_ranges_as"] == "minmax"
    assert cands[1]["score"] == cands[0]["score"]
    assert res.method == "minmax"  # equal scores: the first candidate wins


def test_auto_is_deterministic(cnn_path, cnn_data, tmp_path):
    data = ArrayData(cnn_data)
    runs = []
    for i in range(2):
        res = quantize(cnn_path, tmp_path / f"q{i}.onnx", _auto(["percentile", "mse"]),
                       calib_data=data, eval_data=data)  # fmt: skip
        runs.append({k: v for k, v in res.method_selection.items() if k != "seconds"})
    assert runs[0] == runs[1]
    assert (tmp_path / "q0.onnx").read_bytes() == (tmp_path / "q1.onnx").read_bytes()


def test_without_eval_data_auto_compares_on_held_out_calibration_samples(
    cnn_path, cnn_data, tmp_path
):
    res = quantize(cnn_path, tmp_path / "q.onnx", _auto(["percentile", "minmax"]),
                   calib_data=ArrayData(cnn_data))  # fmt: skip
    sel = res.method_selection
    assert sel["held_out"] is True and sel["samples"] == 12  # the last quarter of 48
    assert "samples 36..47" in sel["data"]


def test_explicit_method_skips_the_search(cnn_path, rigged, tmp_path):
    rigged.calls.clear()
    res = quantize(cnn_path, tmp_path / "q.onnx", make_config(method="entropy"), table=rigged)
    assert {m for m, _ in rigged.calls} == {"entropy", "minmax"}  # minmax: effect check only
    assert res.method == "entropy" and res.method_selection["mode"] == "explicit"


def test_auto_with_a_table_alone_falls_back_and_says_why(cnn_path, rigged, tmp_path):
    res = quantize(cnn_path, tmp_path / "q.onnx", make_config(), table=rigged)
    assert res.method == "percentile"
    assert "no evaluation or calibration data" in res.method_selection["skipped"]
    assert any(w.startswith("method auto:") for w in res.warnings)


def test_cli_prints_the_choice(cnn_path, cnn_data, tmp_path, capsys):
    np.save(tmp_path / "calib.npy", cnn_data["x"][:40])
    np.save(tmp_path / "eval.npy", cnn_data["x"][8:24])
    rc = main(["quantize", str(cnn_path), "--calib", str(tmp_path / "calib.npy"), "--eval",
               str(tmp_path / "eval.npy"), "--auto-samples", "8", "--equalization", "off",
               "-o", str(tmp_path / "m.onnx")])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "method auto -> " in text and "first 8 samples" in text and "entropy " in text


def test_sample_window_streams_the_right_rows():
    x = np.arange(10, dtype=np.float32)[:, None]
    window = SampleWindow(ArrayData({"x": x}, np.arange(10)), 3, 8)
    batches = list(window.iter_batches(4))
    assert window.num_samples == 5
    assert np.concatenate([b.inputs["x"] for b in batches]).ravel().tolist() == [3, 4, 5, 6, 7]
    assert np.concatenate([b.labels for b in batches]).tolist() == [3, 4, 5, 6, 7]


def test_fidelity_score_without_logits_uses_cosine_then_sqnr():
    assert fidelity_score({"cosine": 0.9, "sqnr_db": 20.0}) == (0.9, 20.0)
    assert fidelity_score({"top1_agreement": 1.0, "cosine": 0.9, "sqnr_db": 20.0}) == (1.0, 0.9)
