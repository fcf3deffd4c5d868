"""The numpy-only preprocessing against a Pillow-based reference (what a torchvision
`Resize` + `CenterCrop` + `ToTensor` + `Normalize` pipeline on a PIL image computes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from nnship.runtime import Bundle, BundleError
from nnship.runtime.manifest import Preprocessing, TensorInfo
from nnship.runtime.preprocess import preprocess_image, resize_bilinear

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Pillow rounds to uint8 between its horizontal and vertical passes, this resize does not:
# at most one grey level apart, i.e. 1/255/std in normalized units
ONE_LEVEL = 1.01 / 255 / min(STD)


def reference(image: np.ndarray, pp: Preprocessing) -> np.ndarray:
    img = Image.fromarray(image)
    if pp.resize:
        img = img.resize((pp.resize[1], pp.resize[0]), Image.BILINEAR)
    if pp.crop:
        h, w = pp.crop
        top, left = round((img.height - h) / 2), round((img.width - w) / 2)
        img = img.crop((left, top, left + w, top + h))
    x = np.asarray(img).astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    if pp.color == "BGR":
        x = x[:, :, ::-1]
    x = (x * pp.scale - np.array(pp.mean, np.float32)) / np.array(pp.std, np.float32)
    return (x.transpose(2, 0, 1) if pp.layout == "NCHW" else x)[None]


def pp(**kw) -> Preprocessing:
    base = dict(input="x", resize=(20, 24), crop=(16, 16), scale=1 / 255, mean=MEAN, std=STD,
                layout="NCHW", color="RGB")  # fmt: skip
    return Preprocessing(**{**base, **kw})


def spec(layout: str, channels: int, h: int = 16, w: int = 16) -> TensorInfo:
    shape = ("batch", channels, h, w) if layout == "NCHW" else ("batch", h, w, channels)
    return TensorInfo("x", shape, "float32")


@pytest.mark.parametrize(
    ("image", "size"),
    [
        (data.chelsea(), (20, 24)),  # 300x451 -> strong, antialiased shrink
        (data.astronaut(), (97, 203)),  # odd sizes, different factors per axis
        (data.coffee()[100:110, 200:212], (20, 24)),  # 10x12 -> enlarge
    ],
)
def test_resize_matches_pillow_bilinear(image, size):
    ours = resize_bilinear(image, *size).astype(int)
    theirs = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR)).astype(int)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1
    assert np.mean(ours != theirs) < 0.2


@pytest.mark.parametrize(
    ("options", "channels"),
    [
        ({}, 3),
        ({"layout": "NHWC"}, 3),
        ({"color": "BGR"}, 3),
        ({"color": "BGR", "layout": "NHWC", "resize": None, "crop": (200, 100)}, 3),
        ({"resize": (16, 16), "crop": None, "mean": (0.0,), "std": (1.0,), "scale": 1.0}, 3),
    ],
)
def test_preprocess_matches_the_pillow_reference(options, channels):
    p = pp(**options)
    h, w = p.crop or p.resize
    image = data.rocket()
    ours = preprocess_image(image, p, spec(p.layout, channels, h, w))
    want = reference(image, p)
    assert ours.shape == want.shape and ours.dtype == np.float32
    tol = 1.01 * p.scale / min(p.std)  # one grey level in the model's units
    assert np.abs(ours - want).max() <= tol * 1.0001
    assert np.abs(ours - want).mean() < tol / 4


def test_bgr_reverses_the_channels_before_mean_and_std():
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = 255  # pure red
    x = preprocess_image(image, pp(color="BGR", resize=None, crop=None), spec("NCHW", 3))
    assert x[0, 2].mean() == pytest.approx((1 - 0.406) / 0.225)  # red lands in channel 2
    assert x[0, 0].mean() == pytest.approx((0 - 0.485) / 0.229)


def test_grey_images_feed_a_grey_model():
    image = data.camera()  # 512x512 grey
    p = pp(color="GRAY", mean=(0.5,), std=(0.25,), resize=(18, 18))
    ours = preprocess_image(image, p, spec("NCHW", 1))
    assert ours.shape == (1, 1, 16, 16)
    assert np.abs(ours - reference(image, p)).max() <= 1.01 / 255 / 0.25


def _with_alpha(image: np.ndarray) -> np.ndarray:
    alpha = np.random.default_rng(0).integers(0, 256, image.shape[:2], dtype=np.uint8)
    return np.dstack([image, alpha])


@pytest.mark.parametrize(
    ("image", "color"),
    [
        (data.camera(), "RGB"),  # L
        (data.camera()[:, :, None], "BGR"),  # L, one channel axis
        (_with_alpha(data.camera()), "RGB"),  # LA
        (_with_alpha(data.chelsea()), "RGB"),  # RGBA
        (data.chelsea(), "GRAY"),  # RGB
        (_with_alpha(data.chelsea()), "GRAY"),  # RGBA
        (_with_alpha(data.camera()), "GRAY"),  # LA
    ],
)
def test_colour_modes_are_converted_as_pillow_converts_them(image, color):
    grey = color == "GRAY"
    p = pp(color=color, **({"mean": (0.5,), "std": (0.25,)} if grey else {}))
    converted = np.asarray(Image.fromarray(np.squeeze(image)).convert("L" if grey else "RGB"))
    want = spec("NCHW", 1 if grey else 3)
    np.testing.assert_array_equal(
        preprocess_image(image, p, want), preprocess_image(converted, p, want)
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8, 5), np.uint8),
         r"5-channel image; .*\(color RGB\) takes 3 channels and converts greyscale, "
         r"greyscale\+alpha, RGB and RGBA images"),
        (np.zeros((4, 4, 3, 2), np.uint8), r"shape \[4, 4, 3, 2\]"),
        (np.zeros((8, 8, 3), np.int32), r"dtype int32"),
    ],
)  # fmt: skip
def test_wrong_channel_count_or_shape_names_the_image(bundle_dir, image, message):
    with pytest.raises(BundleError, match="cat.png: " + message):
        Bundle.load(bundle_dir).preprocess(image, source="cat.png")


def test_a_crop_larger_than_the_image_is_refused():
    with pytest.raises(BundleError, match=r"preprocessing\.crop: 16x16 is larger than"):
        preprocess_image(data.chelsea(), pp(resize=(8, 8)), spec("NCHW", 3))


def test_bundle_preprocess_feeds_the_model(bundle_dir):
    bundle = Bundle.load(bundle_dir)
    x = bundle.preprocess(data.chelsea())
    np.testing.assert_allclose(x, reference(data.chelsea(), bundle.preprocessing), atol=ONE_LEVEL)
    out = bundle.session("onnxruntime/fp32").run({"x": x})
    assert out["logits"].shape == (1, 5) and np.isfinite(out["logits"]).all()
