"""Subnormal weights: as-shipped vs flushed latency on ONNX Runtime and OpenVINO, one pass.

For each model: how many float weights are subnormal (per tensor, total), the outputs' max abs
difference after `nnship.onnx.subnormals.flush_subnormals` on real inputs, and the latency (median,
batch 1, 2 threads) of: ORT as shipped, ORT flushed, nnship's compiled ORT artifact
(`OnnxRuntimeBackend.compile`), OpenVINO f32 as shipped, OpenVINO f32 flushed, nnship's
OpenVINO artifact; all timed interleaved in ONE pass (warm-up before each turn).

Models: ddddocr's detector as installed, and the same detector "seeded" with subnormals the
way issue 9 describes the shipped model it measured (the installed ddddocr 1.6.1 detector has
none): in every Conv, its 10% smallest-magnitude weights, and in the largest 1x1 Conv 63%, are
replaced by subnormals of the same sign. Extra ONNX files can be given on the command line
(their inputs are filled with the detector's real images when the shape fits, else uniform).

Run: PYTHONPATH=src .venv/bin/python bench/subnormals.py [--rounds 5] [--runs 20] [MODEL.onnx ...]
Target (issue 9): no float artifact slower than the same model with its subnormals flushed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
import zoo_models  # noqa: E402
from _timing import interleaved_latency  # noqa: E402
from foreign_data import cpu_line, detector_data, runner_for  # noqa: E402

from nnship.onnx.subnormals import flush_subnormals  # noqa: E402

TINY = np.finfo(np.float32).tiny


def seeded(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy whose Conv weights carry subnormals like the shipped detector of issue 9."""
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {n.input[1] for n in out.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    inits = {i.name: i for i in out.graph.initializer if i.name in weights}
    arrays = {k: numpy_helper.to_array(v) for k, v in inits.items()}
    one_by_one = [k for k, a in arrays.items() if a.ndim == 4 and a.shape[2:] == (1, 1)]
    biggest = max(one_by_one, key=lambda k: arrays[k].size) if one_by_one else None
    for name, array in arrays.items():
        share = 0.63 if name == biggest else 0.10
        flat = array.astype(np.float32).ravel().copy()
        idx = np.argsort(np.abs(flat))[: int(share * flat.size)]
        sign = np.where(flat[idx] < 0, -1.0, 1.0).astype(np.float32)
        flat[idx] = sign * (TINY * rng.uniform(0.01, 0.99, idx.size)).astype(np.float32)
        inits[name].CopyFrom(numpy_helper.from_array(flat.reshape(array.shape), name))
    return out


def _inputs(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    shape = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
    if tuple(shape[1:]) == images.shape[1:]:
        return images[:4]
    return np.random.default_rng(0).uniform(0, 1, (4, *shape[1:])).astype(np.float32)


def measure(
    name: str, path: Path, work: Path, images: np.ndarray, args: argparse.Namespace
) -> None:
    from nnship.backends.onnxruntime import OnnxRuntimeBackend
    from nnship.backends.openvino import OpenVinoBackend

    model = onnx.load(str(path))
    flushed, report = flush_subnormals(model)
    flushed_path = work / f"{name}.flushed.onnx"
    onnx.save(flushed, str(flushed_path))
    x = _inputs(model, images)
    shipped_ort, flushed_ort = runner_for("ort", path), runner_for("ort", flushed_path)
    diff = max(
        float(np.max(np.abs(shipped_ort(x[i : i + 1]) - flushed_ort(x[i : i + 1]))))
        for i in range(len(x))
    )
    ort_art = OnnxRuntimeBackend().compile(path, work / f"{name}.ort")
    ov_art = OpenVinoBackend().compile(path, work / f"{name}.ov", threads=2)
    worst = sorted(report.tensors.items(), key=lambda kv: -kv[1]["subnormal"] / kv[1]["size"])
    print(f"\n## {name} ({path})")
    print(
        f"subnormal weights: {report.total} of {report.float_weights} "
        f"({100 * report.total / max(report.float_weights, 1):.1f}%) in {len(report.tensors)} tensors"
        + (
            f"; worst {worst[0][0]} {100 * worst[0][1]['subnormal'] / worst[0][1]['size']:.0f}%"
            if worst
            else ""
        )
    )
    print(f"outputs after flushing, max abs diff on {len(x)} real inputs: {diff:.3g}")
    runners = {
        "ORT as shipped": shipped_ort,
        "ORT flushed": flushed_ort,
        "nnship ORT artifact": runner_for("ort", ort_art.path),
        "OpenVINO f32 as shipped": runner_for("ov", path),
        "OpenVINO f32 flushed": runner_for("ov", flushed_path),
        "nnship OpenVINO artifact": runner_for("ov", ov_art.path),
    }
    ms = interleaved_latency(runners, x[:1], rounds=args.rounds, runs=args.runs, warmup=3)
    print("| variant | p50 ms | vs flushed (same runtime) |")
    print("|---|---:|---:|")
    for label, value in ms.items():
        ref = (
            ms["ORT flushed"]
            if label.startswith(("ORT", "nnship ORT"))
            else ms["OpenVINO f32 flushed"]
        )
        print(f"| {label} | {value:.2f} | {value / ref:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(cpu_line())
    _, images = detector_data(calib=1, evaluation=8)
    work = Path(tempfile.mkdtemp(prefix="nnship-subnormals-"))
    import importlib.util

    spec = importlib.util.find_spec("ddddocr")
    models: list[tuple[str, Path]] = []
    if spec is not None and spec.origin:
        det = zoo_models.ddddocr_det()
        if det.is_file():
            models.append(("ddddocr-det", det))
            seeded_path = work / "ddddocr-det-seeded.onnx"
            onnx.save(seeded(onnx.load(str(det))), str(seeded_path))
            models.append(("ddddocr-det-seeded", seeded_path))
    models += [(p.stem, p) for p in args.models]
    for name, path in models:
        measure(name, path, work, images, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
