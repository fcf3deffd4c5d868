"""Image folders: preprocessing numbers against hand computations, labels, streaming, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.sources.data import DataConfig, open_data, open_data_config
from nnship.sources.images import ImageFolderData, ImagePreprocess

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _gradient(width: int = 8, height: int = 6) -> np.ndarray:
    """HWC uint8 image whose every pixel differs: r = 10x + y, g = 20y, b = 255 - 7x."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([10 * x + y, 20 * y, 255 - 7 * x], axis=-1).astype(np.uint8)


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _solid(color: tuple[int, int, int], width: int, height: int) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.uint8), (height, width, 3)).copy()


def _only_batch(source) -> np.ndarray:
    (batch,) = list(source.iter_batches(100))
    return next(iter(batch.inputs.values()))


def test_crop_and_normalise_match_hand_computation(tmp_path: Path) -> None:
    pixels = _gradient()
    _save(tmp_path / "img.png", pixels)
    config = ImagePreprocess(resize=6, center_crop=4, mean=MEAN, std=STD)
    got = _only_batch(ImageFolderData(tmp_path, config))
    # 8x6 image: shorter side already 6 (no resize); crop 4x4 at top = (6-4)/2 = 1, left = 2.
    crop = pixels[1:5, 2:6].astype(np.float32)
    want = ((crop * np.float32(1 / 255) - np.float32(MEAN)) / np.float32(STD)).transpose(2, 0, 1)
    assert got.shape == (1, 3, 4, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-6)


def test_rectangular_crop_offsets_round_like_torchvision(tmp_path: Path) -> None:
    pixels = _gradient()
    _save(tmp_path / "img.png", pixels)
    got = _only_batch(ImageFolderData(tmp_path, ImagePreprocess(center_crop=(3, 5), scale=1.0)))
    # top = round((6 - 3) / 2) = round(1.5) = 2, left = round((8 - 5) / 2) = 2
    np.testing.assert_array_equal(got[0], pixels[2:5, 2:7].astype(np.float32).transpose(2, 0, 1))


def test_resize_keeps_aspect_ratio_on_the_shorter_side(tmp_path: Path) -> None:
    _save(tmp_path / "tall.png", _solid((30, 60, 90), width=7, height=10))
    got = _only_batch(ImageFolderData(tmp_path, ImagePreprocess(resize=4, scale=1.0)))
    # shorter side 7 -> 4; longer 10 -> int(4 * 10 / 7) = 5 (truncated, as torchvision does)
    assert got.shape == (1, 3, 5, 4)
    np.testing.assert_array_equal(got[0, :, 0, 0], [30, 60, 90])
    assert np.all(got[0] == got[0, :, :1, :1])  # a solid colour stays solid


def test_bgr_nhwc_and_gray(tmp_path: Path) -> None:
    _save(tmp_path / "c.png", _solid((10, 20, 30), 4, 4))
    bgr = _only_batch(
        ImageFolderData(tmp_path, ImagePreprocess(channel_order="BGR", layout="NHWC", scale=1.0))
    )
    assert bgr.shape == (1, 4, 4, 3)
    np.testing.assert_array_equal(bgr[0, 0, 0], [30, 20, 10])
    _save(tmp_path / "c.png", _solid((77, 77, 77), 4, 4))
    gray = _only_batch(
        ImageFolderData(tmp_path, ImagePreprocess(channel_order="GRAY", mean=(0.5,), std=(0.5,)))
    )
    assert gray.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(gray[0, 0, 0, 0], (77 / 255 - 0.5) / 0.5, rtol=1e-6)


def test_class_folders_give_sorted_ids_interleaved(tmp_path: Path) -> None:
    for cls, count in {"cat": 3, "dog": 1, "ant": 2}.items():
        for i in range(count):
            _save(tmp_path / cls / f"{i}.png", _solid((i, 0, 0), 4, 4))
    source = open_data(tmp_path, image=ImagePreprocess())
    assert isinstance(source, ImageFolderData)
    assert source.classes == ["ant", "cat", "dog"] and source.has_labels and source.num_samples == 6
    labels = np.concatenate([b.labels for b in source.iter_batches(4)])
    assert labels.tolist() == [0, 1, 2, 0, 1, 1]
    limited = open_data(tmp_path, limit=3)
    assert np.concatenate([b.labels for b in limited.iter_batches(2)]).tolist() == [0, 1, 2]


def test_jpeg_and_auto_detection(tmp_path: Path) -> None:
    Image.fromarray(_gradient(16, 12)).save(tmp_path / "photo.jpg", quality=95)
    source = open_data(
        tmp_path,
        input_specs=[TensorSpec("pixel_values", (1, 3, 8, 8))],
        image=ImagePreprocess(resize=8, center_crop=8),
    )
    (batch,) = list(source.iter_batches(2))
    assert batch.inputs["pixel_values"].shape == (1, 3, 8, 8)
    assert batch.labels is None


def test_construction_reads_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        _save(tmp_path / f"{i}.png", _solid((i, i, i), 4, 4))
    (tmp_path / "9_corrupt.png").write_bytes(b"\x89PNG not really")
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(
        Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k)
    )
    source = open_data(
        tmp_path, input_specs=[TensorSpec("x", (1, 3, 4, 4))], image=ImagePreprocess()
    )
    assert opened == [] and source.num_samples == 5
    batches = source.iter_batches(2)
    next(batches)
    assert len(opened) == 2  # one batch decodes only its own images
    next(batches)
    with pytest.raises(DataError, match="9_corrupt.png' cannot be read"):
        next(batches)


def test_spec_mismatch_is_reported_before_decoding(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _solid((1, 2, 3), 8, 8))
    with pytest.raises(DataError, match="'x'.*channel_order"):
        open_data(tmp_path, input_specs=[TensorSpec("x", (1, 1, 8, 8))], image=ImagePreprocess())
    with pytest.raises(DataError, match=r"'x'.*expected shape \[batch, 3, 8, 8\]"):
        open_data(
            tmp_path,
            input_specs=[TensorSpec("x", (1, 3, 8, 8))],
            image=ImagePreprocess(center_crop=4),
        )
    with pytest.raises(DataError, match="feeds one input"):
        open_data(tmp_path, input_specs=[TensorSpec("a", (1, 3, 8, 8)), TensorSpec("b", (1, 3))])


def test_mixed_sizes_without_resize(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _solid((1, 2, 3), 8, 8))
    _save(tmp_path / "b.png", _solid((1, 2, 3), 6, 8))
    with pytest.raises(DataError, match="b.png' gives shape .*set resize and center_crop"):
        list(open_data(tmp_path).iter_batches(2))


def test_crop_larger_than_image(tmp_path: Path) -> None:
    _save(tmp_path / "small.png", _solid((1, 2, 3), 4, 4))
    with pytest.raises(DataError, match="small.png' is 4x4.*center_crop 8x8"):
        list(open_data(tmp_path, image=ImagePreprocess(center_crop=8)).iter_batches(1))


def test_preprocess_validation() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ImagePreprocess(normalize=True)
    with pytest.raises(ValidationError, match="mean has 2 values"):
        ImagePreprocess(mean=(0.5, 0.5))
    with pytest.raises(ValidationError, match="std values must be positive"):
        ImagePreprocess(std=(0.0, 1.0, 1.0))
    with pytest.raises(ValidationError):
        ImagePreprocess(layout="CHW")


def test_fingerprint_depends_on_preprocessing_and_bytes(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _solid((1, 2, 3), 8, 8))
    base = open_data(tmp_path).fingerprint()
    assert open_data(tmp_path, image=ImagePreprocess(scale=1.0)).fingerprint() != base
    _save(tmp_path / "a.png", _solid((1, 2, 4), 8, 8))
    assert open_data(tmp_path).fingerprint() != base


def test_recipe_config_feeds_a_real_model(tmp_path: Path) -> None:
    import torch

    from nnship.models import digits_cnn

    for digit in ("0", "1"):
        for i in range(2):
            _save(
                tmp_path / "digits" / digit / f"{i}.png", _solid((40 * i, 40 * i, 40 * i), 12, 10)
            )
    cfg = DataConfig.model_validate(
        {"path": "digits", "image": {"resize": 8, "center_crop": 8, "channel_order": "GRAY"}}
    )
    source = open_data_config(cfg, [TensorSpec("x", (1, 1, 8, 8))], tmp_path)
    torch.manual_seed(0)
    model = digits_cnn(width=4).eval()
    for batch in source.iter_batches(3):
        with torch.no_grad():
            logits = model(torch.from_numpy(batch.inputs["x"]))
        assert logits.shape == (len(batch.labels), 10)
