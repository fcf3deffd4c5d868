"""`nnship run`: a bundle on this machine through `nnship.runtime`, on arrays or an image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core.errors import DataError


@dataclass
class TopK:
    """The `k` best classes of one sample of one output: (class index, label or None, score)."""

    output: str
    sample: int
    classes: list[tuple[int, str | None, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "sample": self.sample,
            "classes": [{"index": i, "label": lab, "score": s} for i, lab, s in self.classes],
        }


@dataclass
class RunResult:
    """What `api.run_bundle` ran: the artifact (`target`, `device`), the inputs it was given
    (`source`), every output by name, and top-k classes for class-score outputs."""

    bundle: Path
    name: str
    target: str
    device: str
    source: str
    outputs: dict[str, np.ndarray]
    top_k: list[TopK] = field(default_factory=list)
    output_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "name": self.name,
            "target": self.target,
            "device": self.device,
            "source": self.source,
            "outputs": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.tolist()}
                for k, v in self.outputs.items()
            },
            "top_k": [t.to_dict() for t in self.top_k],
            "output_path": str(self.output_path) if self.output_path else None,
        }


def _load_arrays(path: Path, input_names: list[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: expected a .npy array or a .npz archive keyed by input name")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy says "Cannot load file containing pickled data" etc.
        raise DataError(f"{path}: not a readable {suffix} file: {exc}") from None
    if suffix == ".npz":
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    if len(input_names) != 1:
        raise DataError(
            f"{path}: one array, but the bundle takes inputs {input_names}; give a .npz keyed "
            "by input name"
        )
    return {input_names[0]: loaded}


def decode_image(path: Path) -> np.ndarray:
    """An image file as an (H, W[, C]) uint8 array, EXIF orientation applied; palette, CMYK
    and YCbCr images become RGB, other modes stay as decoded (grey, RGBA: the preprocessing
    converts them to the bundle's colour as Pillow would). Anything Pillow cannot decode is a
    `DataError` naming the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as opened:
            img = ImageOps.exif_transpose(opened)
            if img.mode in ("P", "CMYK", "YCbCr"):  # colour images in another encoding; a
                img = img.convert("RGB")  # palette's transparency entry is not an alpha channel
            elif img.mode in ("PA", "1"):
                img = img.convert({"PA": "RGBA", "1": "L"}[img.mode])
            return np.asarray(img)
    except (
        UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
    ) as exc:  # fmt: skip
        raise DataError(f"{path}: not a decodable image: {exc}") from None


def _top_k(outputs: dict[str, np.ndarray], labels: list[str] | None, k: int) -> list[TopK]:
    """Top-k per sample for the outputs that are (batch, classes) scores: every such output
    when the bundle declares labels of that many classes, else none."""
    if not labels or k <= 0:
        return []
    out = []
    for name, value in outputs.items():
        if (
            value.ndim != 2
            or value.shape[1] != len(labels)
            or not np.issubdtype(value.dtype, np.floating)
        ):
            continue
        for sample, row in enumerate(value):
            best = np.argsort(-row, kind="stable")[:k]
            out.append(TopK(name, sample, [(int(i), labels[i], float(row[i])) for i in best]))
    return out


def run_bundle(
    bundle: str | Path,
    *,
    inputs: str | Path | Mapping[str, np.ndarray] | None = None,
    image: str | Path | None = None,
    target: str = "auto",
    device: str | None = None,
    threads: int | None = None,
    output: str | Path | None = None,
    top_k: int = 5,
) -> RunResult:
    """`nnship run DIST`: run a bundle here through `nnship.runtime` (hashes checked first).

    Give `inputs` (a `.npy` for a one-input model, a `.npz` keyed by input name, or a dict of
    arrays) or `image` (any file Pillow decodes; the bundle's declared preprocessing turns it
    into the model input). `target`: "auto" (default: OpenVINO when installed, else ONNX
    Runtime), a backend name, or an artifact id ("openvino/int8"); `device`: see
    `nnship.runtime.Bundle.session`; `threads`: inference threads (default: the runtime's).
    `output`: also write every output to this `.npz`.
    `top_k`: classes listed per sample (default 5) for (batch, classes) outputs when the
    bundle declares labels. Wrong input names, shapes or dtypes, an undecodable image or one
    with other than 1-4 channels are errors naming the tensor or file (exit 2)."""
    from nnship.runtime import Bundle

    if (inputs is None) == (image is None):
        raise DataError("give exactly one of inputs (.npy/.npz) or image")
    loaded = Bundle.load(bundle)
    input_names = [t.name for t in loaded.inputs]
    if image is not None:
        image_path = Path(image)
        source = str(image_path)
        pp = loaded.preprocessing
        if pp is None:
            raise DataError(
                f"{image_path}: the bundle {bundle} declares no preprocessing; give --input arrays"
            )
        others = [n for n in input_names if n != pp.input]
        if others:
            raise DataError(
                f"{image_path}: the model also takes inputs {others}; give --input .npz"
            )
        feeds = {pp.input: loaded.preprocess(decode_image(image_path), source=source)}
    elif isinstance(inputs, Mapping):
        source = "arrays"
        feeds = dict(inputs)
    else:
        source = str(inputs)
        assert inputs is not None  # exactly one of inputs/image, checked above
        feeds = _load_arrays(Path(inputs), input_names)
    with loaded.session(target, device=device, threads=threads) as model:
        outputs = model.run(feeds)
        result = RunResult(
            bundle=Path(bundle), name=loaded.name, target=model.target, device=model.device,
            source=source, outputs=outputs, top_k=_top_k(outputs, loaded.labels, top_k),
        )  # fmt: skip
    if output is not None:
        from nnship.core.fileio import atomic_path

        with atomic_path(Path(output)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **outputs)  # type: ignore[arg-type]  # a file object: a name would get ".npz" appended
        result.output_path = Path(output)
    return result
