"""Real data that ships inside installed packages, for demos, tests and benchmarks.

Nothing is downloaded: `sklearn.datasets.load_digits` (1797 real 8x8 handwritten digits)
is the labelled set; the photos in `sklearn.datasets.load_sample_images` give natural-image
statistics for calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """A labelled split: named inputs (first axis = sample) and integer labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, n: int) -> Split:
        return Split({k: v[:n] for k, v in self.inputs.items()}, self.labels[:n])


def _digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    images = digits.images[order].astype(np.float32)  # values 0..16
    return images, digits.target[order].astype(np.int64), order


def digits_images(
    size: int = 8,
    channels: int = 1,
    seed: int = 0,
    test_fraction: float = 0.25,
    input_name: str = "x",
) -> tuple[Split, Split]:
    """Train/test splits of the digits as N x C x size x size float32, standardized.

    `size > 8` upsamples bilinearly (so CNNs with several stride-2 stages can be trained);
    `channels > 1` repeats the grey channel (for RGB-style models).
    """
    import torch
    import torch.nn.functional as F

    images, labels, _ = _digits(seed)
    x = images[:, None, :, :] / 16.0
    if size != 8:
        x = F.interpolate(
            torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False
        ).numpy()
    x = ((x - 0.3) / 0.4).astype(np.float32)
    if channels > 1:
        x = np.repeat(x, channels, axis=1)
    x = np.ascontiguousarray(x)
    n_test = int(round(len(labels) * test_fraction))
    train = Split({input_name: x[n_test:]}, labels[n_test:])
    test = Split({input_name: x[:n_test]}, labels[:n_test])
    return train, test


def digits_tokens(seed: int = 0, test_fraction: float = 0.25) -> tuple[Split, Split]:
    """The digits as token sequences for the transformer encoder: each of the 64 pixels
    (0..16) is a token id; the row-major scan is the sequence.

    Trailing background tokens (0) are marked as padding in `attention_mask` so the mask
    is real, varying per sample. Inputs: `input_ids`, `attention_mask` (N x 64 int64).
    """
    images, labels, _ = _digits(seed)
    ids = images.reshape(len(images), 64).astype(np.int64)
    mask = np.ones_like(ids)
    for row, seq in enumerate(ids):
        nonzero = np.flatnonzero(seq)
        last = int(nonzero[-1]) + 1 if len(nonzero) else 1
        mask[row, last:] = 0
    n_test = int(round(len(labels) * test_fraction))
    train = Split({"input_ids": ids[n_test:], "attention_mask": mask[n_test:]}, labels[n_test:])
    test = Split({"input_ids": ids[:n_test], "attention_mask": mask[:n_test]}, labels[:n_test])
    return train, test


def photo_patches(
    n: int = 256, size: int = 32, seed: int = 0, input_name: str = "x"
) -> dict[str, np.ndarray]:
    """`n` random RGB patches (N x 3 x size x size float32, ImageNet mean/std normalized)
    cut from the real photos that ship with scikit-learn (china.jpg, flower.jpg)."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(0, photo.shape[0] - size)
        left = rng.integers(0, photo.shape[1] - size)
        patch = photo[top : top + size, left : left + size].astype(np.float32) / 255.0
        out[i] = (patch.transpose(2, 0, 1) - mean) / std
    return {input_name: out}
