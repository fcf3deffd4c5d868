"""Image folders as data sources, with declared preprocessing (resize, crop, normalise, layout).

Folder layouts (as torchvision's `ImageFolder` and ImageNet use them):
- `root/<class>/**/*.jpg`: labelled; class ids are the sorted sub-folder names' positions.
- `root/*.jpg`: unlabelled.
Images are decoded with Pillow one batch at a time; nothing is read when the source is built.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

import numpy as np

from nnship.core import DataSource, LabeledBatch
from nnship.core.errors import DataError
from nnship.sources.config import ImagePreprocess

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
)


def _resample(name: str) -> int:
    from PIL import Image

    return {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[name]


def preprocess_image(image, config: ImagePreprocess, *, where: str = "image") -> np.ndarray:
    """Apply `config` to one Pillow image; returns a float32 array (CHW or HWC)."""
    image = image.convert("L" if config.channel_order == "GRAY" else "RGB")
    if config.resize is not None:
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(config.resize * long / short)
        size = (config.resize, new_long) if width <= height else (new_long, config.resize)
        if size != image.size:
            image = image.resize(size, _resample(config.resample))
    if config.crop_hw is not None:
        crop_h, crop_w = config.crop_hw
        width, height = image.size
        if crop_h > height or crop_w > width:
            raise DataError(
                f"Image '{where}' is {width}x{height} (WxH) after resizing, smaller than "
                f"center_crop {crop_w}x{crop_h}; set resize to at least the crop size"
            )
        top = int(round((height - crop_h) / 2.0))
        left = int(round((width - crop_w) / 2.0))
        image = image.crop((left, top, left + crop_w, top + crop_h))
    array: np.ndarray = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if config.channel_order == "BGR":
        array = array[:, :, ::-1]
    array = array * np.float32(config.scale)
    if config.mean is not None:
        array = array - np.asarray(config.mean, dtype=np.float32)
    if config.std is not None:
        array = array / np.asarray(config.std, dtype=np.float32)
    if config.layout == "NCHW":
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array, dtype=np.float32)


def _image_files(folder: Path, *, recursive: bool) -> list[Path]:
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in candidates
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def has_images(folder: Path) -> bool:
    """True if `folder` or its sub-folders hold an image file (a listing that stops at the
    first image; nothing is decoded)."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*"))


class ImageFolderData(DataSource):
    """Images under `root`, preprocessed into the input `input_name`, streamed batch by batch.

    Construction only lists files. Samples are interleaved across classes (the first image of
    every class, then the second, ...), so any prefix, such as `limit` (default: all images),
    covers the classes evenly. Each batch decodes only its own images.
    """

    def __init__(
        self,
        root: Path | str,
        preprocess: ImagePreprocess | None = None,
        *,
        input_name: str = "input",
        limit: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.preprocess = preprocess or ImagePreprocess()
        self._input_name = self.preprocess.input_name or input_name
        if not self.root.is_dir():
            raise DataError(f"Image folder '{self.root}' does not exist")
        self.classes = sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        if self.classes:
            loose = _image_files(self.root, recursive=False)
            if loose:
                log.warning(
                    "Image folder '%s': %d image(s) directly in the folder are ignored "
                    "because it has class sub-folders",
                    self.root,
                    len(loose),
                )
            per_class = [
                [(p, i) for p in _image_files(self.root / c, recursive=True)]
                for i, c in enumerate(self.classes)
            ]
            self._samples = [s for group in zip_longest(*per_class) for s in group if s]
        else:
            self._samples = [(p, -1) for p in _image_files(self.root, recursive=False)]
        if not self._samples:
            raise DataError(
                f"Image folder '{self.root}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        if limit is not None:
            self._samples = self._samples[:limit]

    @property
    def num_samples(self) -> int:
        return len(self._samples)

    @property
    def input_names(self) -> list[str]:
        return [self._input_name]

    @property
    def has_labels(self) -> bool:
        return bool(self.classes)

    @property
    def files(self) -> list[Path]:
        """The image files in iteration order."""
        return [p for p, _ in self._samples]

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return preprocess_image(image, self.preprocess, where=str(path))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DataError(f"Image '{path}' cannot be read: {exc}") from exc

    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        for start in range(0, len(self._samples), batch_size):
            chunk = self._samples[start : start + batch_size]
            arrays: list[np.ndarray] = []
            for path, _ in chunk:
                array = self._load(path)
                if arrays and array.shape != arrays[0].shape:
                    raise DataError(
                        f"Image '{path}' gives shape {array.shape} but '{chunk[0][0]}' gives "
                        f"{arrays[0].shape}; set resize and center_crop so all images match"
                    )
                arrays.append(array)
            labels = np.array([c for _, c in chunk], dtype=np.int64) if self.classes else None
            yield LabeledBatch({self._input_name: np.stack(arrays)}, labels)

    def describe(self) -> str:
        classes = f", {len(self.classes)} classes" if self.classes else ""
        return f"image folder '{self.root}' ({self.num_samples} images{classes})"

    def fingerprint(self) -> str:
        """SHA-256 of the preprocessing, class names, and each image's path and file bytes."""
        digest = hashlib.sha256(self.preprocess.model_dump_json().encode())
        digest.update("\0".join(self.classes).encode())
        for path, label in self._samples:
            digest.update(f"{path.relative_to(self.root)}\0{label}\0".encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()
