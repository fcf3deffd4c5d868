"""The recipe's data sections (`[data.calibration]`, `[data.evaluation]`, `[data.train]`) and
the image preprocessing they may declare (pydantic, `extra="forbid"`; imports only pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ImagePreprocess(BaseModel):
    """How images become model inputs, applied in this order:

    1. convert to RGB (or grayscale for `channel_order="GRAY"`);
    2. `resize`: scale so the shorter side is this many pixels (aspect ratio kept; the longer
       side is truncated to an integer, as torchvision's `Resize(int)` does);
    3. `center_crop`: crop `size` or `(height, width)` pixels from the centre (the offset is
       rounded as torchvision's `CenterCrop`); the image must be at least that large;
    4. `x = pixel * scale` (pixel in 0..255; default scale 1/255 gives 0..1);
    5. `x = (x - mean) / std` per channel, `mean`/`std` given in the model's channel order
       (defaults: no normalisation);
    6. `channel_order` "RGB" (default), "BGR" (Caffe/OpenCV-trained models) or "GRAY" (1 channel);
    7. `layout` "NCHW" (default, PyTorch) or "NHWC".

    Output dtype is float32. `input_name` names the model input the images feed (default:
    the model's single input). Without resize/crop every image must already share one size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    resize: int | None = Field(default=None, gt=0)
    center_crop: int | tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float = Field(default=1.0 / 255.0, gt=0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    channel_order: Literal["RGB", "BGR", "GRAY"] = "RGB"
    resample: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    input_name: str | None = None

    @field_validator("center_crop")
    @classmethod
    def _positive_crop(cls, value: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sizes = (value,) if isinstance(value, int) else value or ()
        if any(s <= 0 for s in sizes):
            raise ValueError("center_crop sizes must be positive")
        return value

    @field_validator("std")
    @classmethod
    def _positive_std(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError("std values must be positive")
        return value

    @model_validator(mode="after")
    def _channel_counts(self) -> ImagePreprocess:
        for field in ("mean", "std"):
            value = getattr(self, field)
            if value is not None and len(value) not in (1, self.channels):
                raise ValueError(
                    f"{field} has {len(value)} values; expected 1 or {self.channels} "
                    f"(channel_order {self.channel_order})"
                )
        return self

    @property
    def channels(self) -> int:
        return 1 if self.channel_order == "GRAY" else 3

    @property
    def crop_hw(self) -> tuple[int, int] | None:
        if self.center_crop is None:
            return None
        if isinstance(self.center_crop, int):
            return (self.center_crop, self.center_crop)
        return (int(self.center_crop[0]), int(self.center_crop[1]))

    def sample_shape(self) -> tuple[int | None, ...]:
        """Shape of one preprocessed image (no batch axis); None where it depends on the image."""
        height, width = self.crop_hw or (None, None)
        if self.layout == "NCHW":
            return (self.channels, height, width)
        return (height, width, self.channels)


DataKind = Literal["auto", "npy", "npz", "folder", "images", "callable"]


class DataConfig(BaseModel):
    """A data section of the recipe (`[data.calibration]`, `[data.evaluation]`).

    `path`: a file or folder (relative to the recipe's folder), or `package.module:callable`.
    `kind`: "auto" (default) detects it from the path; `limit`: use at most this many samples
    (default: all); `labels_key`: the labels array's key in `.npz` files / callable dicts
    (default "labels"); `image`: preprocessing for an image folder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    kind: DataKind = "auto"
    limit: int | None = Field(default=None, gt=0)
    labels_key: str = "labels"
    image: ImagePreprocess | None = None
