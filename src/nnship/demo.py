"""`nnship demo`: the whole pipeline on a real model and real data, with nothing to download.

On first use a small CNN (`nnship.models.digits_cnn`) is trained on scikit-learn's handwritten
digits (`nnship.datasets.digits_images`, a few seconds on a laptop CPU) and cached with its seed
under `$NNSHIP_CACHE_DIR/demo/` (default `~/.cache/nnship/demo/`) as a state dict (loaded back
with `weights_only=True`), beside its calibration and evaluation `.npz` files. Then the demo
recipe (`examples/demo/recipe.toml`; an identical copy is embedded here for installs without
the examples folder) runs through the same `nnship.build.build` as any recipe.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnship.fileio import atomic_path, ensure_writable_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

DEMO_SEED = 0
DEMO_EPOCHS = 8
CALIBRATION_SAMPLES = 256
"""Training-split samples written to the calibration file (the rest are not needed)."""

EMBEDDED_RECIPE = """\
# The nnship demo: a small CNN trained on scikit-learn's 8x8 handwritten digits (real data,
# nothing downloaded). `nnship demo` trains it on first use and writes the files named below
# into $NNSHIP_CACHE_DIR/demo (default ~/.cache/nnship/demo); then
# `nnship build examples/demo/recipe.toml` works on its own too.
name = "demo"
seed = 0

[model]
source = "nnship.models:digits_cnn"
inputs = ["x:1x1x8x8"]
weights = "${NNSHIP_CACHE_DIR}/demo/digits_cnn.seed0.pt"

[data.calibration]
path = "${NNSHIP_CACHE_DIR}/demo/calibration.npz"

[data.evaluation]
path = "${NNSHIP_CACHE_DIR}/demo/evaluation.npz"

[quantize]
precisions = ["int8"]

[backends]
targets = ["onnxruntime", "openvino"]

[validate]
batch_size = 64

[validate.gates]
max_top1_drop = 2.0
min_cosine = 0.99

[validate.latency]
runs = 100
"""


@dataclass(frozen=True)
class DemoFiles:
    """The demo's cached inputs."""

    directory: Path
    weights: Path
    calibration: Path
    evaluation: Path


def demo_dir(cache: str | Path | None = None) -> Path:
    """`<cache>/demo`, where `cache` defaults to `$NNSHIP_CACHE_DIR` or `~/.cache/nnship`."""
    from nnship.recipe import cache_dir

    return (Path(cache).expanduser() if cache is not None else cache_dir()) / "demo"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # a file handle, so numpy does not append a second ".npz" to the temporary name
        np.savez(handle, **arrays)


def prepare_demo(
    cache: str | Path | None = None, *, seed: int = DEMO_SEED, epochs: int = DEMO_EPOCHS
) -> DemoFiles:
    """Train (first use only) and cache the demo model and its data; returns their paths.

    Training is seeded (`seed`, default 0) and takes `epochs` (default 8) passes over the
    1347 training digits. Files already present are reused, so this is instant after the first
    call.
    """
    import torch

    from nnship.datasets import digits_images
    from nnship.models import digits_cnn
    from nnship.models.train import accuracy, train_classifier

    directory = ensure_writable_dir(demo_dir(cache))
    files = DemoFiles(
        directory,
        directory / f"digits_cnn.seed{seed}.pt",
        directory / "calibration.npz",
        directory / "evaluation.npz",
    )
    train, test = digits_images(seed=seed)
    if not files.weights.is_file():
        log.info("Training the demo CNN on the digits (first use; seed %d)", seed)
        model = train_classifier(digits_cnn(), train, epochs=epochs, seed=seed)
        log.info("Demo CNN test accuracy: %.1f%%", 100 * accuracy(model, test))
        with atomic_path(files.weights) as tmp:
            torch.save(model.state_dict(), tmp)
    if not files.calibration.is_file():
        calib = train.take(CALIBRATION_SAMPLES)
        _save_npz(files.calibration, {**calib.inputs, "labels": calib.labels})
    if not files.evaluation.is_file():
        _save_npz(files.evaluation, {**test.inputs, "labels": test.labels})
    return files


def demo_recipe_path() -> Path | None:
    """`examples/demo/recipe.toml` of a source checkout, when there is one."""
    import nnship

    candidate = Path(nnship.__file__).resolve().parents[2] / "examples" / "demo" / "recipe.toml"
    return candidate if candidate.is_file() else None


def demo_recipe(files: DemoFiles, recipe: str | Path | None = None) -> Any:
    """The demo `Recipe` pointing at `files`; sections whose stage is not installed are
    dropped (with a log line), so the demo runs everything this installation can do."""
    from nnship.recipe import recipe_from_data, section_available

    path = Path(recipe) if recipe is not None else demo_recipe_path()
    text = path.read_text(encoding="utf-8") if path is not None else EMBEDDED_RECIPE
    raw = tomllib.loads(text)
    for section in ("prune", "distill", "quantize"):
        if section in raw and not section_available(section):
            log.warning("demo: skipping [%s]: that stage is not installed", section)
            del raw[section]
    raw.setdefault("model", {})["weights"] = str(files.weights)
    data = raw.setdefault("data", {})
    data.setdefault("calibration", {})["path"] = str(files.calibration)
    data.setdefault("evaluation", {})["path"] = str(files.evaluation)
    base = path.parent if path is not None else files.directory
    return recipe_from_data(
        raw,
        name=str(path) if path is not None else "embedded demo recipe",
        base_dir=base,
        recipe_path=path,
    )


def demo(
    *,
    cache: str | Path | None = None,
    output_dir: str | Path | None = None,
    recipe: str | Path | None = None,
    reuse: bool = True,
) -> Any:
    """Prepare the demo model and data (cached), then build the demo recipe.

    `cache` defaults to `$NNSHIP_CACHE_DIR` or `~/.cache/nnship`; `output_dir` to `build/demo`;
    `recipe` to `examples/demo/recipe.toml` (or the embedded copy). Returns the `BuildResult`.
    """
    from nnship.build import build

    files = prepare_demo(cache)
    return build(demo_recipe(files, recipe), output_dir=output_dir, reuse=reuse)
