"""A raw image -> the model input, per the bundle's declared preprocessing, in numpy only.

The device may have no image library (no Pillow, no OpenCV: nnship-runtime depends on numpy
alone), so the resize is written here. It follows Pillow's `Image.resize(..., BILINEAR)`
(libImaging/Resample.c): a separable triangle filter whose support widens by the scale factor
when shrinking (antialiasing), sampled at pixel centres, output rounded to uint8 like Pillow's.
That is what a torchvision `Resize` on a PIL image computes in training, so the device sees
the pixels the model was trained and calibrated on (within one grey level: Pillow rounds
between its two passes, this keeps floats).
"""

from __future__ import annotations

import numpy as np

from .errors import BundleError
from .manifest import Preprocessing, TensorInfo


def _filter_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of Pillow's bilinear resampling along one axis."""
    scale = size_in / size_out
    support = max(scale, 1.0)  # the triangle's half-width in input pixels
    centres = (np.arange(size_out) + 0.5) * scale
    taps = np.arange(size_in) + 0.5
    weights = np.clip(1.0 - np.abs(taps[None, :] - centres[:, None]) / support, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`image` (H, W, C) resized to (height, width, C); uint8 in, uint8 out (rounded)."""
    rows = _filter_matrix(image.shape[0], height)
    cols = _filter_matrix(image.shape[1], width)
    out = np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols, optimize=True)
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(image.dtype if np.issubdtype(image.dtype, np.floating) else np.float32)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre (height, width) window (torchvision's rounding of the offsets)."""
    h, w = image.shape[:2]
    if height > h or width > w:
        raise BundleError(
            f"preprocessing.crop: {height}x{width} is larger than the (resized) image {h}x{w}"
        )
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return image[top : top + height, left : left + width]


def preprocess_image(image: np.ndarray, pp: Preprocessing, spec: TensorInfo,
                     *, source: str = "image") -> np.ndarray:  # fmt: skip
    """One decoded image (H, W, 3) RGB or (H, W) / (H, W, 1) grey, uint8 (or float in 0..255)
    -> a batch of one in the model's layout, colour order and dtype:
    resize -> centre crop -> * scale -> (x - mean) / std -> colour order -> layout."""
    if not isinstance(image, np.ndarray):
        raise BundleError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BundleError(
            f"{source}: shape {list(image.shape)}; expected an image (height, width[, channels])"
        )
    channels = image.shape[2]
    wanted = 1 if pp.color == "GRAY" else 3
    if channels != wanted:
        kind = {1: "greyscale", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels}-channel")
        raise BundleError(
            f"{source}: {kind} image with {channels} channel(s); the bundle's preprocessing "
            f"(color {pp.color}) takes {wanted} (convert the image first)"
        )
    if not (image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating)):
        raise BundleError(f"{source}: dtype {image.dtype}; expected uint8 (or float) pixels")
    if pp.resize:
        image = resize_bilinear(image, *pp.resize)
    if pp.crop:
        image = center_crop(image, *pp.crop)
    if pp.color == "BGR":  # decoded images are RGB; mean/std are given in the model's order
        image = image[:, :, ::-1]
    x: np.ndarray = image.astype(np.float32) * np.float32(pp.scale)
    x = (x - np.asarray(pp.mean, np.float32)) / np.asarray(pp.std, np.float32)
    if pp.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    x = np.ascontiguousarray(x[None])
    _check_against_spec(x, spec, source)
    return x.astype(np.dtype(spec.dtype), copy=False)


def _check_against_spec(x: np.ndarray, spec: TensorInfo, source: str) -> None:
    if len(spec.shape) != x.ndim:
        raise BundleError(
            f"{source}: preprocessing gives {x.ndim} dims {list(x.shape)}, input "
            f"{spec.name!r} takes {len(spec.shape)}"
        )
    for axis, (dim, size) in enumerate(zip(spec.shape, x.shape)):
        if isinstance(dim, int) and dim != size:
            raise BundleError(
                f"{source}: preprocessing gives {list(x.shape)}, input {spec.name!r} takes "
                f"{list(spec.shape)} (axis {axis}); the image needs resize/crop to the model's "
                "size"
            )
