"""Real inputs for the foreign ONNX benchmarks (ddddocr's detector, 1x3x416x416 float 0..255 BGR).

Calibration and evaluation come from DIFFERENT source images: calibration from `skimage.data.text()`
and a set of photos, evaluation from `skimage.data.page()` and other photos, each as random
crops and rescales, letterboxed to 416x416 on grey 114 the way ddddocr's `preproc` does.

Run: .venv/bin/python bench/foreign_data.py OUT_DIR   (writes calib.npy, eval.npy)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # zoo_models

CALIB_SOURCES = ("text", "astronaut", "coffee", "chelsea", "camera", "coins", "china")
EVAL_SOURCES = ("page", "rocket", "moon", "cat", "flower", "immunohistochemistry")
SIZE = 416


def photo(name: str) -> np.ndarray:
    """One of the named photos as RGB uint8 (H x W x 3): scikit-learn's "china" and "flower",
    else `skimage.data.<name>()`, via bench/zoo_models.py."""
    import zoo_models

    if name in ("china", "flower"):
        return zoo_models.sklearn_photos()[0 if name == "china" else 1]
    return zoo_models.skimage_photos((name,))[0]


def letterbox(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """ddddocr's `preproc`: scale to fit, paste top-left on grey 114, HWC -> CHW float32."""
    import cv2

    padded = np.full((size, size, 3), 114, np.uint8)
    r = min(size / image.shape[0], size / image.shape[1])
    h, w = max(int(image.shape[0] * r), 1), max(int(image.shape[1] * r), 1)
    padded[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1), dtype=np.float32)  # BGR


def samples(sources: tuple[str, ...], count: int, seed: int) -> np.ndarray:
    """`count` letterboxed crops/rescales of the named images (first one of each is whole)."""
    rng = np.random.default_rng(seed)
    images = [photo(s) for s in sources]
    out = []
    for i in range(count):
        image = images[i % len(images)]
        if i >= len(images):
            h, w = image.shape[:2]
            ch = int(h * rng.uniform(0.35, 1.0))
            cw = int(w * rng.uniform(0.35, 1.0))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            image = image[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                image = image[:, ::-1]
        out.append(letterbox(np.ascontiguousarray(image)))
    return np.stack(out)


def detector_data(calib: int = 64, evaluation: int = 48) -> tuple[np.ndarray, np.ndarray]:
    return samples(CALIB_SOURCES, calib, seed=0), samples(EVAL_SOURCES, evaluation, seed=1)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/foreign")
    out.mkdir(parents=True, exist_ok=True)
    c, e = detector_data()
    np.save(out / "calib.npy", c)
    np.save(out / "eval.npy", e)
    print(f"calib {c.shape} from {CALIB_SOURCES}; eval {e.shape} from {EVAL_SOURCES} -> {out}")


# -- shared by bench/subnormals.py, bench/foreign_onnx.py, bench/bf16.py ------------------------
def cpu_line() -> str:
    from nnship.core.environment import capture_environment

    env = capture_environment(2)
    return f"CPU: {env.cpu_model}; {env.capabilities()}"


def ort_session(path: Path | str, threads: int = 2):  # noqa: ANN201
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ov_compiled(path: Path | str, precision: str = "f32", threads: int = 2):  # noqa: ANN201
    import openvino as ov

    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": precision,
    }
    return ov.Core().compile_model(str(path), "CPU", config)


def runner_for(kind: str, path: Path | str, threads: int = 2):  # noqa: ANN201
    """A callable x -> first output: kind "ort", "ov" (f32) or "ov-bf16"."""
    if kind == "ort":
        session = ort_session(path, threads)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    compiled = ov_compiled(path, "bf16" if kind == "ov-bf16" else "f32", threads)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})[compiled.outputs[0]].copy()
