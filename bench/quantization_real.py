"""INT8 of real pretrained CNNs that pip packages ship (EfficientNet-Lite0, MTCNN RNet/ONet):
nnship's default and each accuracy technique (AdaRound weight rounding, cross-layer
equalization, bias correction, layer fallback) side by side with `quantize_static` (MinMax,
QDQ, U8 activations, S8 per-channel weights) and NNCF (`nncf.quantize` on the OpenVINO model).

Data: 224x224 (or the net's size) crops, ImageNet mean/std, of real photos: evaluation crops
from astronaut, coffee, rocket (skimage.data) and china.jpg (sklearn); calibration crops from
*other* images (chelsea, hubble, immunohistochemistry, retina, camera, coins, clock, flower.jpg).
Metric: top-1 agreement with the float model on the evaluation crops (for MTCNN nets, argmax
of the face/no-face output plus the cosine of the box regression). Latency: ONNX Runtime
(batch 1, 2 threads) INT8/FP32 ratio from one interleaved pass, warm-up before each turn.
Quantization wall time and peak RSS are measured in a fresh subprocess per variant.

    PYTHONPATH=src .venv/bin/python bench/quantization_real.py [--models efficientnet_lite0]
        [--variants default,adaround,...] [--eval-crops 300] [--calib-crops 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zoo_models  # bench/, the script's own folder

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
EVAL_IMAGES = ("astronaut", "coffee", "rocket", "sk:china")
CALIB_IMAGES = (
    "chelsea",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "coins",
    "clock",
    "sk:flower",
)


# -- data --------------------------------------------------------------------------------
def _image(name: str) -> np.ndarray:
    """A zoo_models photo ("sk:" names are scikit-learn's) as RGB float32 in [0, 1]."""
    if name.startswith("sk:"):
        img = zoo_models.sklearn_photos()[("china", "flower").index(name[3:])]
    else:
        img = zoo_models.skimage_photos((name,))[0]
    return img.astype(np.float32) / 255.0


def crops(names: tuple[str, ...], count: int, size: int, seed: int, *, norm: str) -> np.ndarray:
    """`count` random-scale, random-position, random-flip square crops resized to `size`."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    images = [_image(n) for n in names]
    out = np.empty((count, 3, size, size), np.float32)
    for k in range(count):
        img = images[k % len(images)]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.25, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = img[y : y + side, x : x + side]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0]
        out[k] = t.numpy()
    if norm == "imagenet":
        out = (out - MEAN[:, None, None]) / STD[:, None, None]
    else:  # MTCNN: (x * 255 - 127.5) / 128
        out = (out * 255.0 - 127.5) * 0.0078125
    return out.astype(np.float32)


# -- models ------------------------------------------------------------------------------
# The real pretrained models of bench/zoo_models.py, each with its input size and normalisation.
MODELS = {
    "efficientnet_lite0": lambda: (zoo_models.efficientnet_lite0(), 224, "imagenet"),
    "mtcnn_rnet": lambda: (zoo_models.mtcnn_rnet(), 24, "mtcnn"),
    "mtcnn_onet": lambda: (zoo_models.mtcnn_onet(), 48, "mtcnn"),
}


def prepare(name: str, work: Path, eval_n: int, calib_n: int) -> dict:
    import torch

    work.mkdir(parents=True, exist_ok=True)
    onnx_path = work / "model.fp32.onnx"
    net, size, norm = MODELS[name]()
    net.eval()
    if not onnx_path.exists():
        x = torch.zeros(1, 3, size, size)
        torch.onnx.export(
            net,
            (x,),
            str(onnx_path),
            input_names=["x"],
            output_names=["output"] if name == "efficientnet_lite0" else None,
            dynamic_axes={"x": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    ev = work / "eval.npy"
    ca = work / "calib.npy"
    if not ev.exists():
        np.save(ev, crops(EVAL_IMAGES, eval_n, size, 0, norm=norm))
        np.save(ca, crops(CALIB_IMAGES, calib_n, size, 1, norm=norm))
    return {"onnx": onnx_path, "eval": ev, "calib": ca}


# -- variants (each runs in a fresh subprocess: wall time and peak memory are its own) -------
NNSHIP_VARIANTS = {
    "nnship default": {},
    "nnship minmax": {"method": "minmax"},
    "nnship minmax CLE on": {"method": "minmax", "equalization": "on"},
    "nnship minmax bias corr on": {"method": "minmax", "bias_correction": "on"},
    "nnship minmax adaround": {"method": "minmax", "weight_rounding": "adaround"},
    "nnship adaround": {"weight_rounding": "adaround"},
}
ANCHORS = ("quantize_static", "nncf")


def _child(variant: str, onnx_path: str, calib: str, out: str, extra: str) -> None:
    t0 = time.perf_counter()
    x = np.load(calib)
    info: dict = {}
    if variant == "quantize_static":
        from _ort_anchor import ort_quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = out + ".pre.onnx"
        quant_pre_process(onnx_path, pre)
        ort_quantize_static(
            pre, out, [{"x": x[i : i + 1]} for i in range(len(x))], per_channel=True
        )
    elif variant == "nncf":
        import nncf
        import openvino as ov

        model = ov.convert_model(onnx_path)
        qmodel = nncf.quantize(
            model, nncf.Dataset([x[i : i + 1] for i in range(len(x))]), subset_size=len(x)
        )
        ov.save_model(qmodel, out)
    else:
        from nnship.quantize import make_config, quantize
        from nnship.sources import ArrayData

        config = make_config(json.loads(extra))
        result = quantize(onnx_path, out, config, calib_data=ArrayData({"x": x}))
        info = {
            "method": result.method,
            "applied": [t.get("name") for t in result.applied_transforms],
            "considered": [
                {k: t.get(k) for k in ("name", "decision", "skipped")}
                for t in result.details.get("transforms_considered", [])
            ],
            "rounding": result.details.get("weight_rounding"),
            "float_nodes": len(result.float_nodes),
        }
    info["seconds"] = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: ru_maxrss carries the parent's peak across fork + exec
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
    info["peak_rss_mb"] = int(status) / 1024
    print("RESULT " + json.dumps(info, default=str))


def quantize_variant(variant: str, paths: dict, work: Path, extra: dict) -> tuple[Path, dict]:
    suffix = ".xml" if variant == "nncf" else ".onnx"
    out = work / (variant.replace(" ", "_").replace("+", "_") + suffix)
    cmd = [sys.executable, __file__, "--child", variant, str(paths["onnx"]), str(paths["calib"])]
    cmd += [str(out), json.dumps(extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{variant} failed: {proc.stderr[-3000:]}")
    return out, json.loads(line[-1][7:])


# -- evaluation ----------------------------------------------------------------------------
def _runner(path: Path):  # noqa: ANN202
    if path.suffix == ".xml":
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(
            str(path), "CPU", {"INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": "f32"}
        )
        return lambda x: compiled(x)[compiled.output(0)]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def outputs(path: Path, x: np.ndarray) -> np.ndarray:
    run = _runner(path)
    return np.concatenate([run(x[i : i + 16]) for i in range(0, len(x), 16)])


def score(ref: np.ndarray, out: np.ndarray) -> dict:
    a = ref.reshape(len(ref), -1).astype(np.float64)
    b = out.reshape(len(out), -1).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return {"agreement": float((ref.argmax(1) == out.argmax(1)).mean()), "cosine": cos.mean()}


def latency_ratios(paths: dict[str, Path], x: np.ndarray, rounds: int = 5, runs: int = 40) -> dict:
    """Median ms per variant from one interleaved pass (each turn: 5 warm-ups, `runs` timed)."""
    from _timing import interleaved_latency

    runners = {k: _runner(p) for k, p in paths.items() if p.suffix == ".onnx"}
    return interleaved_latency(runners, x[:1], rounds=rounds, runs=runs, warmup=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--models", default="efficientnet_lite0")
    parser.add_argument("--variants", default=",".join([*NNSHIP_VARIANTS, *ANCHORS]))
    parser.add_argument("--eval-crops", type=int, default=300)
    parser.add_argument("--calib-crops", type=int, default=128)
    parser.add_argument("--workdir", default="/tmp/nnship-quant-real")
    parser.add_argument("--extra", default="{}", help="JSON merged into every nnship config")
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[-1].split("\n", 1)[0]
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    print("CPU flags:", " ".join(f for f in wanted if f in flags.split()))
    extra_all = json.loads(args.extra)
    for name in args.models.split(","):
        work = Path(args.workdir) / name
        paths = prepare(name, work, args.eval_crops, args.calib_crops)
        x_eval = np.load(paths["eval"])
        ref = outputs(paths["onnx"], x_eval)
        rows: dict[str, dict] = {}
        qpaths: dict[str, Path] = {"fp32": paths["onnx"]}
        for variant in args.variants.split(","):
            extra = {**NNSHIP_VARIANTS.get(variant, {}), **extra_all}
            try:
                out, info = quantize_variant(variant, paths, work, extra)
            except RuntimeError as exc:
                rows[variant] = {"error": str(exc).splitlines()[-1]}
                print(f"{variant}: FAILED {exc}", file=sys.stderr)
                continue
            rows[variant] = {**info, **score(ref, outputs(out, x_eval))}
            qpaths[variant] = out
            print(variant, json.dumps(rows[variant], default=str), flush=True)
        lat = latency_ratios(qpaths, x_eval)
        print(f"\n## {name}: {len(x_eval)} eval crops, calib {args.calib_crops} crops")
        print("| variant | top-1 agreement | cosine | ORT INT8/FP32 | quantize s | peak MB |")
        print("|---|---|---|---|---|---|")
        for variant, row in rows.items():
            if "error" in row:
                print(f"| {variant} | failed: {row['error'][:80]} | | | | |")
                continue
            ratio = lat[variant] / lat["fp32"] if variant in lat else float("nan")
            print(
                f"| {variant} | {100 * row['agreement']:.1f}% | {row['cosine']:.4f} | "
                f"{ratio:.2f} | {row['seconds']:.0f} | {row['peak_rss_mb']:.0f} |"
            )
        print(f"(ORT FP32 {lat['fp32']:.2f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
