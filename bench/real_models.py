"""Real pretrained models that pip packages ship with their weights, and real photo crops.

Used by `bench/pruning_real.py` (and usable as `nnship ... bench.real_models:efficientnet_lite0`
with the repository root on PYTHONPATH). Nothing is downloaded: the weights are package data.
"""

from __future__ import annotations

import numpy as np
import torch

# The models themselves (and the photos) are bench/zoo_models.py's; this module adds the
# crops bench/pruning_real.py measures on.
from bench.zoo_models import (  # noqa: F401 - re-exported model factories
    efficientnet_lite0,
    mtcnn_onet,
    mtcnn_rnet,
    skimage_photos,
    sklearn_photos,
)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def photos() -> list[np.ndarray]:
    """Real RGB photos (uint8 HxWx3) from scikit-image and scikit-learn."""
    return skimage_photos(PHOTOS) + sklearn_photos()


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
