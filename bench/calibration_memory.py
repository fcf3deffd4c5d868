"""Peak memory of `collect_statistics` vs a plain ONNX Runtime inference run on the same data.

Each variant runs in its own fresh subprocess (peak RSS is per process); the script prints the
peaks, the import baseline, and the ratio calibration / plain (the issue's target: < 2x).

    .venv/bin/python bench/calibration_memory.py [--size 160] [--samples 256] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("baseline", "plain", "calibrate")


def _child(variant: str, model: str, size: int, samples: int, batch: int, method: str) -> None:
    import numpy as np

    from nnship.calibration import collect_statistics
    from nnship.datasets import photo_patches
    from nnship.sources import ArrayData

    data = ArrayData(photo_patches(samples, size))
    before = _status_mb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    if variant == "plain":
        import onnxruntime as ort

        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        for item in data.iter_batches(batch):
            session.run(None, item.inputs)
    elif variant == "calibrate":
        table = collect_statistics(model, data, batch_size=batch)
        table.ranges(method)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    print(
        json.dumps({"variant": variant, "before_mb": before, "peak_mb": peak, "seconds": seconds})
    )
    np.asarray(0)


def _status_mb(field: str) -> float:
    """A /proc/self/status memory field (VmRSS: now, VmHWM: peak since the last reset), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _reset_peak() -> None:
    """Reset VmHWM (Linux >= 4.0), so the peak excludes import and data-loading transients."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="image side (pixels)")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--method", default="entropy")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.model, args.size, args.samples, args.batch, args.method)
        return 0

    import torch

    from nnship.models import mobilenet_small

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mobilenet.onnx"
        net = mobilenet_small(width_mult=1.0).eval()
        torch.onnx.export(
            net,
            (torch.randn(1, 3, args.size, args.size),),
            str(model),
            input_names=["x"],
            output_names=["output"],
            dynamic_axes={"x": {0: "batch"}},
            dynamo=False,
        )
        results = {}
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--child", variant, "--model", str(model)]
            cmd += ["--size", str(args.size), "--samples", str(args.samples)]
            cmd += ["--batch", str(args.batch), "--method", args.method]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[variant] = json.loads(out.strip().splitlines()[-1])
    base = results["baseline"]["before_mb"]
    print(
        f"mobilenet_small {args.size}x{args.size}, {args.samples} samples, batch {args.batch}, "
        f"method {args.method}; process RSS after imports + data: {base:.0f} MB"
    )
    for variant in VARIANTS[1:]:
        r = results[variant]
        print(
            f"  {variant:<10} peak RSS {r['peak_mb']:7.1f} MB  (+{r['peak_mb'] - r['before_mb']:6.1f}"
            f" MB over imports + data)  {r['seconds']:6.2f} s"
        )
    plain, calib = results["plain"], results["calibrate"]
    print(
        f"  calibration / plain peak RSS: {calib['peak_mb'] / plain['peak_mb']:.2f}x (target < 2x)"
    )
    extra = (calib["peak_mb"] - calib["before_mb"]) / max(
        plain["peak_mb"] - plain["before_mb"], 1e-9
    )
    print(f"  calibration / plain memory added by the run itself: {extra:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
