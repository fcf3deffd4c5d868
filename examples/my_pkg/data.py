"""The user's data callables: each returns a dict of named arrays plus optional "labels"."""

from __future__ import annotations

import numpy as np


def digits(split: str = "test", limit: int = 128) -> dict[str, np.ndarray]:
    """Real 8x8 handwritten digits from scikit-learn as `x` (N x 1 x 8 x 8 float32) + labels."""
    from nnship.datasets import digits_images

    train, test = digits_images()
    part = (train if split == "train" else test).take(limit)
    return {"x": part.inputs["x"], "labels": part.labels}


def calibration() -> dict[str, np.ndarray]:
    return digits("train", 128)


def evaluation() -> dict[str, np.ndarray]:
    return digits("test", 128)
