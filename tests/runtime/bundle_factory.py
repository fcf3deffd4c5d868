"""A real bundle per contract B (docs/bundle.md) from a tiny CNN exported by torch, with
artifacts compiled by ONNX Runtime's quantizer and OpenVINO's converter and expected outputs
produced by real sessions. Written by hand here so the runtime's tests do not depend on the
bundle writer; tests/runtime/test_torch_free.py also uses `nnship.bundle` once it exists."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

LABELS = ["red", "green", "blue", "dark", "bright"]
PREPROCESSING = {
    "resize": [20, 24], "crop": [16, 16], "scale": 1 / 255,
    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    "layout": "NCHW", "color": "RGB", "input": "x",
}  # fmt: skip


def _export_onnx(path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, len(LABELS)),
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 16, 16)
    torch.onnx.export(
        model, (x,), str(path), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False, opset_version=17,
    )  # fmt: skip


def _quantize_int8(fp32: Path, out: Path, samples: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"x": samples[i : i + 1]} for i in range(len(samples))])

        def get_next(self):
            return next(self._it, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ)


def _to_openvino(onnx_path: Path, xml: Path) -> None:
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)


def _run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"x": x})[0]


def _run_ov(xml: Path, x: np.ndarray) -> np.ndarray:
    import openvino as ov

    # f32 pinned as nnship's OpenVINO backend does (a bf16-capable CPU would otherwise run the
    # float layers in bf16)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.array(compiled({"x": x})[compiled.outputs[0]])


def _entry(root: Path, path: Path) -> dict:
    data = path.read_bytes()
    return {
        "path": path.relative_to(root).as_posix(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def write_manifest(root: Path, manifest: dict) -> None:
    """Rewrites the files list (every file but manifest.json, sorted) and the manifest."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest["files"] = [_entry(root, p) for p in files]
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / "manifest.json").write_text(text, encoding="utf-8")


def make_bundle(root: Path, *, work: Path, openvino: bool = True) -> dict:
    """Writes a bundle into `root` (artifacts onnxruntime/fp32, onnxruntime/int8 and, with
    `openvino`, openvino/fp32 and openvino/int8); returns the manifest."""
    import onnxruntime
    import openvino as ov

    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / "model.fp32.onnx"
    _export_onnx(fp32)
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
    int8 = work / "model.int8.onnx"
    _quantize_int8(fp32, int8, calib)
    samples = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    (root / "samples").mkdir(parents=True)
    np.savez(root / "samples" / "inputs.npz", x=samples)

    artifacts = []
    plans = [("onnxruntime", "fp32", fp32), ("onnxruntime", "int8", int8)]
    if openvino:
        plans += [("openvino", "fp32", fp32), ("openvino", "int8", int8)]
    ort_version = ".".join(onnxruntime.__version__.split(".")[:2])
    ov_version = ".".join(ov.__version__.split(".")[:2])
    for backend, precision, onnx_path in plans:
        folder = root / "artifacts" / f"{backend}-{precision}"
        folder.mkdir(parents=True)
        if backend == "onnxruntime":
            entry = folder / "model.onnx"
            entry.write_bytes(onnx_path.read_bytes())
            out = _run_ort(entry, samples)
            files = [entry]
            version = ort_version
        else:
            entry = folder / "model.xml"
            _to_openvino(onnx_path, entry)
            out = _run_ov(entry, samples)
            files = [entry, folder / "model.bin"]
            version = ov_version
        expected = root / "samples" / f"expected.{backend}-{precision}.npz"
        np.savez(expected, logits=out)
        artifacts.append({
            "id": f"{backend}/{precision}", "backend": backend, "precision": precision,
            "device": "CPU", "runtime": {"package": backend, "min_version": version},
            "entry": entry.relative_to(root).as_posix(),
            "files": [_entry(root, f) for f in sorted(files)],
            "validation": {"metrics": {"cosine": 0.999}, "latency_ms": {"p50": 0.1, "p90": 0.2},
                           "fingerprint": {}, "gates": {"passed": True, "verdicts": []}},
            "tolerance": {"atol": 1e-4, "rtol": 1e-4, "min_cosine": 0.9999},
            "expected": expected.relative_to(root).as_posix(),
        })  # fmt: skip
    manifest = {
        "schema_version": 1, "nnship_version": "0.1.0", "name": "tiny",
        "model_version": "tiny@0123abcd", "built_at": None, "recipe": {}, "input_hashes": {},
        "inputs": [{"name": "x", "shape": ["batch", 3, 16, 16], "dtype": "float32"}],
        "outputs": [{"name": "logits", "shape": ["batch", len(LABELS)], "dtype": "float32"}],
        "preprocessing": dict(PREPROCESSING), "labels": list(LABELS), "artifacts": artifacts,
        "samples": {"inputs": "samples/inputs.npz", "count": len(samples)},
    }  # fmt: skip
    write_manifest(root, manifest)
    return manifest
