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


_MODES = {1: "greyscale", 2: "greyscale+alpha", 3: "RGB", 4: "RGBA"}
"""Channel count -> the decoded image mode it is taken for (Pillow's L, LA, RGB, RGBA)."""


def convert_color(image: np.ndarray, color: str, *, source: str = "image") -> np.ndarray:
    """`image` (H, W, C) with the channels `color` takes, converted as Pillow's
    `Image.convert` does (so the model sees what `Image.open(f).convert(...)` gave it in
    training): to RGB (also for "BGR": decoded images are RGB, the channels are reversed
    later), grey is repeated in the three channels and alpha is dropped (not composited);
    to "GRAY", alpha is dropped and RGB becomes ITU-R 601-2 luma,
    L = (19595 R + 38470 G + 7471 B + 2**15) >> 16 on uint8 as Pillow's `L24` (libImaging/
    Convert.c), 0.299 R + 0.587 G + 0.114 B on floats. Other channel counts are refused."""
    channels = image.shape[2]
    if channels not in _MODES:
        raise BundleError(
            f"{source}: {channels}-channel image; the bundle's preprocessing (color {color}) "
            f"takes {'1 channel' if color == 'GRAY' else '3 channels'} and converts greyscale, "
            "greyscale+alpha, RGB and RGBA images (1 to 4 channels): convert the image first"
        )
    colour = image[:, :, :3] if channels >= 3 else image[:, :, :1]  # alpha dropped
    if color != "GRAY":
        return colour if colour.shape[2] == 3 else np.repeat(colour, 3, axis=2)
    if colour.shape[2] == 1:
        return colour
    if colour.dtype == np.uint8:
        weighted = colour.astype(np.uint32) @ np.array([19595, 38470, 7471], np.uint32)
        return ((weighted + (1 << 15)) >> 16).astype(np.uint8)[:, :, None]
    return (colour @ np.array([0.299, 0.587, 0.114], colour.dtype))[:, :, None]


def preprocess_image(image: np.ndarray, pp: Preprocessing, spec: TensorInfo,
                     *, source: str = "image") -> np.ndarray:  # fmt: skip
    """One decoded image, (H, W) or (H, W, C) with C 1 (grey), 2 (grey + alpha), 3 (RGB) or
    4 (RGBA), uint8 (or float in 0..255) -> a batch of one in the model's layout, colour order
    and dtype: colour conversion (`convert_color`) -> resize -> centre crop -> * scale ->
    (x - mean) / std -> colour order -> layout."""
    if not isinstance(image, np.ndarray):
        raise BundleError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BundleError(
            f"{source}: shape {list(image.shape)}; expected an image (height, width[, channels])"
        )
    if not (image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating)):
        raise BundleError(f"{source}: dtype {image.dtype}; expected uint8 (or float) pixels")
    image = convert_color(image, pp.color, source=source)
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
