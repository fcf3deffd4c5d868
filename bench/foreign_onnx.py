"""INT8 of a foreign ONNX detector (ddddocr's, opset 11) against float, nnship vs anchors.

Metric: the detector's score map (objectness x class score per anchor cell, 3549 cells) is
binarised as ddddocr does (`score_thr` 0.1; 0.3 also shown) and compared with float's by IoU,
averaged over the evaluation images where the float model detects something (images where
neither fires would count 1.0 each and flatter every variant); `fp` counts evaluation images
where float detects nothing but the variant does. Calibration and evaluation images differ
(`bench/foreign_data.py`). Latency: median ms, batch 1, 2 threads, ONE interleaved pass.

Variants: ORT fp32; nnship int8 (`onnxruntime` profile, and `openvino` profile run by
OpenVINO), with the settings given by --nnship (JSON list of quantize-config overrides);
`quantize_static` MinMax U8S8 per-channel QDQ after the same opset conversion; NNCF on the
float IR (default preset); OpenVINO f32 and bf16.

Run: PYTHONPATH=src .venv/bin/python bench/foreign_onnx.py [--calib 64] [--eval 48]
     [--nnship '[{}, {"method": "mse"}]'] [--skip-latency]
Target (issue 9): map IoU >= 0.90 at NNCF's latency; anchors: best 0.84, NNCF 0.78, bf16 0.94.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).parent))
import zoo_models  # noqa: E402
from _ort_anchor import ort_quantize_static  # noqa: E402
from _timing import interleaved_latency  # noqa: E402
from foreign_data import cpu_line, detector_data, runner_for  # noqa: E402

from nnship.quantize.opset import upgrade_opset  # noqa: E402
from nnship.sources import ArrayData  # noqa: E402


def score_map(out: np.ndarray) -> np.ndarray:
    return out[..., 4] * out[..., 5]


def map_iou(ref: np.ndarray, got: np.ndarray, thr: float) -> tuple[float, int, int]:
    """(mean IoU over images where float fires, how many such images, false-positive images)."""
    ious, fp = [], 0
    for r, g in zip(score_map(ref) > thr, score_map(got) > thr):
        if r.any():
            ious.append((r & g).sum() / (r | g).sum())
        elif g.any():
            fp += 1
    return float(np.mean(ious)) if ious else float("nan"), len(ious), fp


def run_all(run, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    return np.concatenate([run(x[i : i + 1]) for i in range(len(x))])


def quantize_static_anchor(src: Path, out: Path, calib: np.ndarray, name: str) -> Path:
    from onnxruntime.quantization import CalibrationMethod

    converted, _ = upgrade_opset(onnx.load(str(src)))
    prepared = out.with_suffix(".op18.onnx")
    onnx.save(converted, str(prepared))
    feeds = [{name: calib[i : i + 1]} for i in range(len(calib))]
    ort_quantize_static(
        prepared, out, feeds, per_channel=True, calibrate_method=CalibrationMethod.MinMax
    )
    return out


def nncf_anchor(src: Path, out: Path, calib: np.ndarray) -> Path:
    import nncf
    import openvino as ov

    model = ov.convert_model(str(src))
    dataset = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    quantized = nncf.quantize(model, dataset, subset_size=len(calib))
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def nnship_int8(
    src: Path, out: Path, calib: np.ndarray, ev: np.ndarray, name: str, extra: dict
) -> tuple[Path, dict]:
    from nnship.quantize import make_config, quantize

    cfg = make_config({"calibration": {"max_samples": len(calib)}, **extra})
    eval_data = ArrayData({name: ev}) if cfg.has_budget or cfg.method == "auto" else None
    result = quantize(src, out, cfg, calib_data=ArrayData({name: calib}), eval_data=eval_data)
    return Path(result.path), result.to_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--eval", type=int, default=48)
    parser.add_argument("--nnship", default="[{}]", help="JSON list of quantize overrides")
    parser.add_argument("--profiles", default="onnxruntime,openvino")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="reuse variants found here")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import importlib.util

    spec = importlib.util.find_spec("ddddocr")
    if spec is None or not spec.origin:
        print("ddddocr is not installed: nothing to measure")
        return 0
    src = zoo_models.ddddocr_det()
    name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    print(cpu_line())
    calib, ev = detector_data(args.calib, args.eval)
    work = args.work or Path(tempfile.mkdtemp(prefix="nnship-foreign-"))
    work.mkdir(parents=True, exist_ok=True)
    variants: dict[str, tuple[str, Path]] = {"ORT fp32": ("ort", src)}
    seconds: dict[str, float] = {}
    notes: dict[str, str] = {}
    for i, extra in enumerate(json.loads(args.nnship)):
        for profile in args.profiles.split(","):
            label = f"nnship int8 {profile} {json.dumps(extra) if extra else 'default'}"
            started = time.perf_counter()
            reuse = work / f"nnship{i}.{profile}.onnx"
            if reuse.exists() and args.work is not None:
                variants[label] = ("ort" if profile == "onnxruntime" else "ov", reuse)
                continue
            try:
                path, info = nnship_int8(
                    src,
                    work / f"nnship{i}.{profile}.onnx",
                    calib,
                    ev,
                    name,
                    {"profile": profile, **extra},
                )
            except Exception as exc:  # a failing variant is a row with its error
                print(f"{label}: FAILED {type(exc).__name__}: {exc}")
                continue
            seconds[label] = time.perf_counter() - started
            notes[label] = (
                f"method {info['method']}, {len(info['float_nodes'])} float nodes, "
                f"{len(info['reverted'])} reverted"
            )
            variants[label] = ("ort" if profile == "onnxruntime" else "ov", path)
    for label, kind, out, make in (
        (
            "quantize_static MinMax U8S8 per-channel (ORT)",
            "ort",
            work / "qs.onnx",
            quantize_static_anchor,
        ),
        ("NNCF int8 (OpenVINO)", "ov", work / "nncf.xml", nncf_anchor),
    ):
        started = time.perf_counter()
        if not (out.exists() and args.work is not None):
            out = (
                make(src, out, calib, name)
                if make is quantize_static_anchor
                else make(src, out, calib)
            )
            seconds[label] = time.perf_counter() - started
        variants[label] = (kind, out)
    variants["quantize_static QDQ run by OpenVINO"] = ("ov", work / "qs.onnx")
    variants["OpenVINO f32"] = ("ov", src)
    variants["OpenVINO bf16"] = ("ov-bf16", src)
    runners = {k: runner_for(kind, path) for k, (kind, path) in variants.items()}
    ref = run_all(runners["ORT fp32"], ev)
    ms = (
        {}
        if args.skip_latency
        else interleaved_latency(runners, ev[:1], rounds=args.rounds, runs=args.runs, warmup=3)
    )
    print(f"\nddddocr detector {src.name}; calib {len(calib)} / eval {len(ev)} images")
    print(
        "| variant | IoU@0.1 (n) | IoU@0.3 | fp images @0.1 | p50 ms | vs NNCF | quantize s | notes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    nncf_ms = ms.get("NNCF int8 (OpenVINO)")
    for label, run in runners.items():
        got = run_all(run, ev)
        iou1, n, fp = map_iou(ref, got, 0.1)
        iou3, _, _ = map_iou(ref, got, 0.3)
        lat = ms.get(label)
        ratio = f"{lat / nncf_ms:.2f}" if lat and nncf_ms else "-"
        print(
            f"| {label} | {iou1:.3f} ({n}) | {iou3:.3f} | {fp} | {lat or float('nan'):.1f} | {ratio} "
            f"| {seconds.get(label, float('nan')):.0f} | {notes.get(label, '')} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
