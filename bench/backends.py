"""Backend benchmark: ONNX Runtime vs OpenVINO, FP32 vs INT8 (both OpenVINO INT8 ways).

For the reference models, trained here on real data (ResNet-style and MobileNetV2-style CNNs
on 32x32 digits, a BERT-style encoder on digit token sequences), in one process at 2 threads:

- top-1 agreement with the float PyTorch model (and accuracy) of every artifact,
- latency p50 (batch 1), all artifacts timed interleaved in one pass (this machine drifts),
- the OpenVINO INT8/FP32 latency ratio (target <= 0.4 on the ResNet-style model),
- which OpenVINO INT8 way wins (QDQ ONNX converted by OpenVINO vs NNCF on the float IR),
- nnship's latency figure for an IR against OpenVINO's own `benchmark_app` on the same IR
  (same device, hint, threads, batch, f32 inference precision), as a ratio (target within 5%).

Run: .venv/bin/python bench/backends.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nnship.backends.onnxruntime import OnnxRuntimeRunner
from nnship.backends.openvino import OpenVinoBackend, OpenVinoRunner
from nnship.datasets import digits_images, digits_tokens
from nnship.models import encoder_small, mobilenet_small, resnet_small
from nnship.models.train import accuracy, train_classifier
from nnship.sources import ArrayData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ort_anchor import ort_quantize_static  # noqa: E402
from _timing import interleaved_latency  # noqa: E402

THREADS = 2
log = logging.getLogger("bench.backends")
_START = time.perf_counter()


def stage(message: str) -> None:
    """Progress on stderr (the bench takes minutes on a shared machine)."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


def export(model: torch.nn.Module, example: dict[str, np.ndarray], path: Path) -> Path:
    """nnship's exporter when it exists, else torch.onnx.export (TorchScript, opset 17)."""
    try:
        from nnship.exporter import export_onnx  # type: ignore[attr-defined]
    except ImportError:
        export_onnx = None
    if export_onnx is not None:
        from nnship.core import TensorSpec

        specs = [TensorSpec(k, v.shape, v.dtype.name) for k, v in example.items()]
        return Path(export_onnx(model, path, input_specs=specs).onnx_path)
    names = list(example)
    args = tuple(torch.from_numpy(example[k]) for k in names)
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=names,
        output_names=["output"],
        dynamic_axes={k: {0: "batch"} for k in names},
        opset_version=17,
        dynamo=False,
    )
    return path


def quantize_qdq(onnx: Path, out: Path, calib: ArrayData, profile: str) -> tuple[Path, str]:
    """nnship's quantizer (profile `profile`) when it exists, else ORT's quantize_static."""
    try:
        from nnship.quantize import quantize
        from nnship.quantize.config import make_config

        quantize(onnx, out, make_config(profile=profile), calib_data=calib)
        return out, f"nnship.quantize ({profile} profile)"
    except ImportError:
        pass
    feeds = [b.inputs for b in calib.iter_batches(1)]
    ort_quantize_static(onnx, out, feeds, per_channel=True)
    return out, "onnxruntime.quantization.quantize_static (U8S8 QDQ)"


def predictions(runner, data: dict[str, np.ndarray], batch: int = 64) -> np.ndarray:
    n = len(next(iter(data.values())))
    out = [
        runner.run({k: v[i : i + batch] for k, v in data.items()})[runner.output_names[0]]
        for i in range(0, n, batch)
    ]
    return np.concatenate(out)


def benchmark_app_ms(xml: Path, shapes: str, seconds: int) -> float | None:
    """Median latency (ms) `benchmark_app` reports for `xml` at batch 1 with the runner's own
    compile config (latency hint, 2 threads, f32), passed with -load_config because
    benchmark_app refuses -nthreads together with -hint."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    if not Path(exe).exists():
        return None
    config = {"CPU": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(THREADS),
                      "INFERENCE_PRECISION_HINT": "f32"}}  # fmt: skip
    config_path = xml.with_name("benchmark_app_config.json")
    config_path.write_text(json.dumps(config))
    cmd = [exe, "-m", str(xml), "-d", "CPU", "-load_config", str(config_path),
           "-shape", shapes, "-t", str(seconds)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    match = re.search(r"Median:\s+([0-9.]+)\s*(ms|us)", out)
    if not match:
        stage(f"benchmark_app gave no median: {out[-300:]}")
        return None
    value = float(match.group(1))
    return value / 1000.0 if match.group(2) == "us" else value


def nnship_vs_benchmark_app(xml: Path, batch: dict, shapes: str, repeats: int) -> dict:
    """nnship's latency figure (nnship.metrics.latency) vs benchmark_app on the
    same IR, alternated `repeats` times; medians of each and their ratio."""
    from nnship.metrics.latency import measure_latency
    from nnship.validate.config import LatencyConfig

    ours, theirs = [], []
    for _ in range(repeats):
        with OpenVinoRunner(xml, threads=THREADS, hint="latency") as runner:
            stats = measure_latency(runner, batch, LatencyConfig(runs=1000, threads=THREADS))
            ours.append(stats.p50_ms)
        ba = benchmark_app_ms(xml, shapes, seconds=4)
        if ba is not None:
            theirs.append(ba)
    result = {"nnship_p50_ms": statistics.median(ours)}
    if theirs:
        result["benchmark_app_median_ms"] = statistics.median(theirs)
        result["ratio"] = result["nnship_p50_ms"] / result["benchmark_app_median_ms"]
    return result


def reference_models(quick: bool):
    """(name, model, train split, test split, example shape string for benchmark_app)."""
    epochs = 2 if quick else 4
    train_img, test_img = digits_images(size=32, channels=3)
    yield (
        "resnet_small(width=32, depths=2,2,2)",
        resnet_small(width=32, depths=(2, 2, 2)),
        train_img,
        test_img,
        "x[1,3,32,32]",
        epochs,
    )
    yield (
        "mobilenet_small(width_mult=1.0)",
        mobilenet_small(),
        train_img,
        test_img,
        "x[1,3,32,32]",
        epochs,
    )
    train_tok, test_tok = digits_tokens()
    yield (
        "encoder_small(d_model=64, layers=2)",
        encoder_small(vocab_size=32, max_len=64, num_classes=10),
        train_tok,
        test_tok,
        "input_ids[1,64],attention_mask[1,64]",
        epochs + 2,
    )


def bench_model(name, model, train, test, shapes, epochs, work: Path, args) -> dict:
    torch.manual_seed(0)
    stage(f"{name}: training {epochs} epochs")
    t0 = time.perf_counter()
    model = train_classifier(model, train, epochs=epochs, seed=0)
    train_s = time.perf_counter() - t0
    tag = name.split("(")[0]
    example = {k: v[:1] for k, v in test.inputs.items()}
    fp32 = export(model, example, work / f"{tag}.onnx")
    calib = ArrayData({k: v[:256] for k, v in train.inputs.items()}, name="calibration")
    stage(f"{name}: quantizing and compiling")
    ort_int8, ort_how = quantize_qdq(fp32, work / f"{tag}.ort.int8.onnx", calib, "onnxruntime")
    ov_qdq, ov_how = quantize_qdq(fp32, work / f"{tag}.ov.int8.onnx", calib, "openvino")
    backend = OpenVinoBackend()
    opts = {"threads": THREADS, "hint": "latency"}
    ov_fp32 = backend.compile(fp32, work / tag / "ov-fp32", **opts)
    ov_int8_qdq = backend.compile(ov_qdq, work / tag / "ov-int8-qdq", **opts)
    t1 = time.perf_counter()
    ov_int8_nncf = backend.compile(
        fp32, work / tag / "ov-int8-nncf", precision="int8", calib_data=calib,
        int8_mode="nncf", **opts,
    )  # fmt: skip
    nncf_s = time.perf_counter() - t1
    runners = {
        "ort/fp32": OnnxRuntimeRunner(fp32, threads=THREADS),
        "ort/int8": OnnxRuntimeRunner(ort_int8, threads=THREADS),
        "ov/fp32": backend.load(ov_fp32),
        "ov/int8-qdq": backend.load(ov_int8_qdq),
        "ov/int8-nncf": backend.load(ov_int8_nncf),
    }
    stage(f"{name}: agreement on {len(test)} test samples")
    with torch.no_grad():
        ref = torch.cat(
            [
                model(**{k: torch.from_numpy(v[i : i + 256]) for k, v in test.inputs.items()})
                for i in range(0, len(test), 256)
            ]  # fmt: skip
        ).numpy()
    rows = {"torch/fp32": {"accuracy": accuracy(model, test), "agreement": 1.0}}
    for label, runner in runners.items():
        pred = predictions(runner, test.inputs)
        rows[label] = {
            "accuracy": float((pred.argmax(-1) == test.labels).mean()),
            "agreement": float((pred.argmax(-1) == ref.argmax(-1)).mean()),
            "max_abs_diff": float(np.abs(pred - ref).max()),
        }
    batch = {k: np.ascontiguousarray(v[:1]) for k, v in test.inputs.items()}
    stage(f"{name}: interleaved latency")
    calls = {label: functools.partial(r.run, check=False) for label, r in runners.items()}
    p50 = interleaved_latency(calls, batch, rounds=args.rounds, runs=args.runs, initial_warmup=20)
    for label, ms in p50.items():
        rows[label]["p50_ms"] = ms
    for runner in runners.values():
        runner.close()
    stage(f"{name}: nnship vs benchmark_app")
    cross = {
        "fp32": nnship_vs_benchmark_app(ov_fp32.path, batch, shapes, args.ba_repeats),
        "int8-nncf": nnship_vs_benchmark_app(ov_int8_nncf.path, batch, shapes, args.ba_repeats),
    }
    return {
        "model": name,
        "test_samples": len(test),
        "train_s": train_s,
        "nncf_quantize_s": nncf_s,
        "ort_int8_from": ort_how,
        "ov_qdq_from": ov_how,
        "rows": rows,
        "ov_int8_fp32_ratio": {
            "qdq": p50["ov/int8-qdq"] / p50["ov/fp32"],
            "nncf": p50["ov/int8-nncf"] / p50["ov/fp32"],
        },
        "ort_int8_fp32_ratio": p50["ort/int8"] / p50["ort/fp32"],
        "benchmark_app": cross,
    }


def winner(result: dict) -> str:
    """The faster OpenVINO INT8 way at equal-or-better agreement (1 sample of slack)."""
    qdq, nncf = result["rows"]["ov/int8-qdq"], result["rows"]["ov/int8-nncf"]
    slack = 1.5 / result["test_samples"]  # one test sample, with room for float rounding
    if nncf["agreement"] + slack >= qdq["agreement"] and nncf["p50_ms"] <= qdq["p50_ms"]:
        return "nncf"
    if qdq["agreement"] + slack >= nncf["agreement"] and qdq["p50_ms"] <= nncf["p50_ms"]:
        return "qdq"
    return "nncf" if nncf["agreement"] > qdq["agreement"] else "qdq"


def print_result(result: dict) -> None:
    print(f"\n== {result['model']}  (trained {result['train_s']:.0f} s; ORT INT8 from "
          f"{result['ort_int8_from']}; OV QDQ from {result['ov_qdq_from']})")  # fmt: skip
    print(f"{'artifact':<14}{'accuracy':>10}{'agree':>9}{'p50 ms':>9}")
    for label, row in result["rows"].items():
        p50 = f"{row['p50_ms']:.3f}" if "p50_ms" in row else "-"
        print(f"{label:<14}{row['accuracy']:>10.3f}{row['agreement']:>9.3f}{p50:>9}")
    r = result["ov_int8_fp32_ratio"]
    print(f"OpenVINO INT8/FP32 latency: qdq {r['qdq']:.2f}, nncf {r['nncf']:.2f}; "
          f"ORT INT8/FP32 {result['ort_int8_fp32_ratio']:.2f}; NNCF took "
          f"{result['nncf_quantize_s']:.1f} s; faster INT8 way at equal accuracy: "
          f"{winner(result)}")  # fmt: skip
    for ir, cross in result["benchmark_app"].items():
        if "ratio" in cross:
            print(f"nnship vs benchmark_app ({ir} IR): {cross['nnship_p50_ms']:.3f} ms vs "
                  f"{cross['benchmark_app_median_ms']:.3f} ms, ratio {cross['ratio']:.3f}")  # fmt: skip
        else:
            print(f"benchmark_app not available; nnship {cross['nnship_p50_ms']:.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and timed runs")
    parser.add_argument("--only", help="substring of the model names to run")
    parser.add_argument("--json", type=Path, help="write all results as JSON")
    args = parser.parse_args()
    args.rounds, args.runs = (3, 50) if args.quick else (6, 100)
    args.ba_repeats = 1 if args.quick else 3
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(THREADS)
    results = []
    with tempfile.TemporaryDirectory(prefix="nnship-bench-") as tmp:
        for spec in reference_models(args.quick):
            if args.only and args.only not in spec[0]:
                continue
            result = bench_model(*spec, Path(tmp), args)
            print_result(result)
            results.append(result)
    votes = [winner(r) for r in results]
    print(f"\nOpenVINO INT8 default by measurement: {max(set(votes), key=votes.count)} "
          f"(per model: {votes})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
