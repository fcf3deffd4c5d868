"""`[bundle]`: the recipe section that makes `nnship build` end with a deployable bundle.

```toml
[bundle]
output = "dist/demo"                 # default dist/<name> in the working directory
targets = ["openvino/int8", "onnxruntime/int8"]   # default: every artifact the build made
samples = 4                          # sample inputs stored with expected outputs
archive = true                       # also dist/demo.tar.gz (reproducible)
labels_file = "labels.txt"           # or labels = ["cat", "dog", ...]

[bundle.preprocessing]               # how a raw image becomes the input (nnship run --image)
resize = [72, 72]
crop = [64, 64]
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
```
Relative paths are relative to the recipe file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nnship.core.errors import BundleError

DEFAULT_SAMPLES = 4
MAX_SAMPLES = 256


class Preprocessing(BaseModel):
    """How a raw image becomes the model's input, applied in this order: decode to `color`,
    resize to `resize` (height, width), centre-crop to `crop` (height, width), multiply by
    `scale`, subtract `mean` and divide by `std` per channel, lay out as `layout`, add the
    batch axis. `input` names the model input it feeds (default: the only one)."""

    model_config = ConfigDict(extra="forbid")

    resize: list[int] | None = None
    crop: list[int] | None = None
    scale: float = 1.0 / 255.0
    mean: list[float] | None = None
    std: list[float] | None = None
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    input: str | None = None

    @field_validator("resize", "crop")
    @classmethod
    def _two_positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 2 or min(value) <= 0):
            raise ValueError("must be [height, width], both positive")
        return value

    @field_validator("std")
    @classmethod
    def _nonzero(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(v == 0 for v in value):
            raise ValueError("must not contain 0")
        return value


class BundleConfig(BaseModel):
    """`[bundle]`: where the bundle goes, which artifacts it holds, what it declares."""

    model_config = ConfigDict(extra="forbid")

    output: str | None = None
    """The bundle folder. Defaults to `dist/<recipe name>` in the working directory."""
    targets: list[str] | None = None
    """Artifact ids `<backend>/<precision>` ("openvino/int8"). Defaults to every artifact built."""
    samples: int = Field(default=DEFAULT_SAMPLES, ge=1, le=MAX_SAMPLES)
    """Sample inputs stored with each artifact's expected outputs. Defaults to 4."""
    archive: bool = False
    """Also write `<output>.tar.gz` (reproducible) beside the folder. Defaults to false."""
    preprocessing: Preprocessing | None = None
    labels: list[str] | None = None
    labels_file: str | None = None
    """A UTF-8 text file with one class label per line (blank lines ignored)."""

    @field_validator("targets")
    @classmethod
    def _artifact_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [normalize_target(t) for t in value]

    @model_validator(mode="after")
    def _one_label_source(self) -> BundleConfig:
        if self.labels is not None and self.labels_file is not None:
            raise ValueError("give labels or labels_file, not both")
        return self


def normalize_target(text: str) -> str:
    """ "ov/int8" -> "openvino/int8"; `ValueError` for anything but `<backend>/<precision>`."""
    from nnship.backends import canonical_backend
    from nnship.core.errors import BackendError

    backend, sep, precision = str(text).strip().partition("/")
    if not sep or not backend or not precision:
        raise ValueError(f"'{text}' is not an artifact id '<backend>/<precision>' (openvino/int8)")
    try:
        backend = canonical_backend(backend)
    except BackendError as exc:
        raise ValueError(str(exc)) from None
    return f"{backend}/{precision.lower()}"


def read_labels(path: Path | str) -> list[str]:
    """One label per line of a UTF-8 text file; `BundleError` naming the file otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(f"[bundle] labels_file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"[bundle] labels_file '{path}' cannot be read: {exc}") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise BundleError(f"[bundle] labels_file '{path}' holds no labels")
    return labels
