"""`nnship demo`: the whole pipeline on a real model and real data, with nothing to download.

The demo recipe (`examples/demo/recipe.toml`; an identical copy is embedded here for installs
without the examples folder) names a ResNet-style CNN (`nnship.models.resnet_small`, 0.7M
parameters, 64x64 RGB input: big enough that pruning and INT8 pay on a CPU) and scikit-learn's
handwritten digits upsampled to 64x64 RGB (`nnship.datasets.digits_images`). On first use the
model is trained on them (seeded; about half a minute on two cores) and cached under
`$NNSHIP_CACHE_DIR/demo/` (default `~/.cache/nnship/demo/`) as a state dict, loaded back with
`weights_only=True`, whose file name carries the key of the training settings
(`settings_key`), beside the calibration, evaluation and training `.npz` files. Then the recipe
runs through the same `nnship.pipeline.build` as any recipe (prune -> distill -> export -> INT8
-> ONNX Runtime + OpenVINO -> validation -> gates), with its stage cache under
`$NNSHIP_CACHE_DIR/demo/stages` so a rerun, into any build folder, reuses the distillation, and
the HTML report is written beside the JSON and Markdown ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core import toml
from nnship.core.errors import RecipeError
from nnship.core.fileio import atomic_path, ensure_writable_dir, stable_hash

log = logging.getLogger(__name__)

DEMO_EPOCHS = 3
"""Training passes over the 1348 training digits (98-99% test accuracy for the demo model)."""
DEMO_BATCH_SIZE = 32
DEMO_LR = 3e-3
CALIBRATION_SAMPLES = 256
"""Training-split samples written to the calibration file."""
DATASET = "digits"
"""`nnship.datasets.digits_images`; part of the settings key."""

EMBEDDED_RECIPE = """\
# The nnship demo: a ResNet-style CNN (0.7M parameters, 64x64 RGB input) trained on
# scikit-learn's handwritten digits upsampled to 64x64 (real labelled data, nothing downloaded),
# then pruned to half its channels, distilled from the full model, quantized to INT8, compiled
# for ONNX Runtime and OpenVINO, validated against the float model, and reported
# (report/report.json, report.md and report.html).
#
# `nnship demo` trains the model on first use (cached) and writes the files named below into
# $NNSHIP_CACHE_DIR/demo (default ~/.cache/nnship/demo); then `nnship build
# examples/demo/recipe.toml` works on its own too. The hex part of the weights' name is the key
# of the training settings (model, input shape, data, epochs, seed; `nnship.demo.settings_key`):
# change [model] and `nnship demo` trains and caches a new model under a new key.
name = "demo"
seed = 0

[model]
source = "nnship.models:resnet_small"
factory_kwargs = { width = 32, depths = [2, 2, 2], stem_stride = 2 }
inputs = ["x:1x3x64x64"]
weights = "${NNSHIP_CACHE_DIR}/demo/resnet_small.seed0.3e73a482fcad.pt"

[data.calibration]
path = "${NNSHIP_CACHE_DIR}/demo/digits64x3.seed0.calibration.npz"

[data.evaluation]
path = "${NNSHIP_CACHE_DIR}/demo/digits64x3.seed0.evaluation.npz"

[data.train]
path = "${NNSHIP_CACHE_DIR}/demo/digits64x3.seed0.train.npz"

# Structured pruning: half of every prunable layer's channels (L1 norm), BatchNorm
# recalibrated on the training images; the first conv and the classifier stay whole.
[prune]
ratio = 0.5

# Knowledge distillation from the unpruned model into the pruned one. No augmentation: the
# default random crops and horizontal flips do not suit digits (a flipped 2 is no 2).
[distill]
epochs = 2
augment = false

# INT8 only: FP16 is for GPUs; on a CPU ONNX Runtime runs it slower than FP32.
[quantize]
precisions = ["int8"]

[backends]
targets = ["onnxruntime", "openvino"]

[validate]
batch_size = 64

# The baseline is the float, unpruned PyTorch model: these gates bound what pruning,
# distillation and quantization together may cost.
[validate.gates]
max_top1_drop = 2.0

[validate.latency]
runs = 100

# `nnship tune examples/demo/recipe.toml` (after `nnship demo`) searches these settings for the
# fastest and smallest artifacts that lose at most 1 point of top-1: a grid of 8 builds that
# share their stages (2 prunings and distillations, not 8); see docs/tune.md.
[tune]
objectives = ["latency", "size"]
constraints = { max_top1_drop = 1.0 }
sampler = "grid"

[tune.space]
"prune.ratio" = [0.25, 0.5]
"quantize.method" = ["percentile", "entropy"]
"backends.targets" = [["onnxruntime"], ["openvino"]]

# The demo ends with a deployable bundle (dist/demo, and dist/demo.tar.gz) that `nnship.runtime`
# loads with numpy and one runtime; `nnship demo --dist DIR` puts it elsewhere. A raw image (a
# light digit on a dark background) becomes the model input by the declared preprocessing:
# `nnship run dist/demo --image digit.png`.
[bundle]
archive = true
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

[bundle.preprocessing]
resize = [64, 64]
scale = 0.00392156862745098
mean = [0.3, 0.3, 0.3]
std = [0.4, 0.4, 0.4]
color = "RGB"
"""


@dataclass(frozen=True)
class DemoFiles:
    """The demo's cached inputs."""

    directory: Path
    weights: Path
    calibration: Path
    evaluation: Path
    train: Path


def demo_dir(cache: str | Path | None = None) -> Path:
    """`<cache>/demo`, where `cache` defaults to `$NNSHIP_CACHE_DIR` or `~/.cache/nnship`."""
    from nnship.recipe import cache_dir

    return (Path(cache).expanduser() if cache is not None else cache_dir()) / "demo"


def demo_recipe_path() -> Path | None:
    """`examples/demo/recipe.toml` of a source checkout, when there is one."""
    import nnship

    candidate = Path(nnship.__file__).resolve().parents[2] / "examples" / "demo" / "recipe.toml"
    return candidate if candidate.is_file() else None


def demo_recipe_data(recipe: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """The demo recipe's TOML data and its path: `recipe`, else `examples/demo/recipe.toml` of
    a source checkout, else the embedded copy (path None)."""
    path = Path(recipe) if recipe is not None else demo_recipe_path()
    if path is None:
        return toml.loads(EMBEDDED_RECIPE), None
    try:
        return toml.loads(path.read_text(encoding="utf-8")), path
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc.strerror or exc}") from exc
    except toml.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from exc


def demo_settings(raw: dict[str, Any], *, epochs: int = DEMO_EPOCHS) -> dict[str, Any]:
    """What the demo model's training depends on, read from the recipe data `raw`: the model
    factory and its arguments, the input shape (N x C x H x W: the digits are resized to H x W
    and repeated to C channels), the data set, the training settings and the seed."""
    from nnship.recipe import recipe_from_data

    recipe = recipe_from_data(raw, name="demo recipe", check_files=False)
    specs = recipe.model.input_specs() or []
    shape = specs[0].shape if len(specs) == 1 else ()
    if (
        len(shape) != 4
        or not all(isinstance(d, int) for d in shape[1:])
        or shape[2] != shape[3]
        or shape[1] not in (1, 3)
    ):
        raise RecipeError(
            "demo recipe: [model] inputs must be one image input N x C x S x S with C 1 or 3 "
            f"(the digits are resized to it), got {[str(s) for s in specs]}"
        )
    return {
        "model": recipe.model.source,
        "factory_kwargs": dict(recipe.model.factory_kwargs),
        "input": {"name": specs[0].name, "channels": shape[1], "size": shape[2]},
        "data": DATASET,
        "training": {"epochs": epochs, "batch_size": DEMO_BATCH_SIZE, "lr": DEMO_LR},
        "seed": recipe.seed,
    }


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable hash of `demo_settings` (the cached weights' name carries it)."""
    return stable_hash(settings, 12)


def demo_files(directory: Path, settings: dict[str, Any]) -> DemoFiles:
    """Where the demo's weights and data live for `settings` (nothing is written)."""
    factory = settings["model"].rsplit(":", 1)[-1]
    seed = settings["seed"]
    data = f"{settings['data']}{settings['input']['size']}x{settings['input']['channels']}"
    data += f".seed{seed}"
    return DemoFiles(
        directory,
        directory / f"{factory}.seed{seed}.{settings_key(settings)}.pt",
        directory / f"{data}.calibration.npz",
        directory / f"{data}.evaluation.npz",
        directory / f"{data}.train.npz",
    )


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # a file handle, so numpy does not append a second ".npz" to the temporary name
        np.savez(handle, **arrays)


def prepare_demo(
    cache: str | Path | None = None,
    *,
    recipe: str | Path | None = None,
    epochs: int = DEMO_EPOCHS,
) -> DemoFiles:
    """Train (first use only) and cache the demo recipe's model and its data; returns the paths.

    The model is the recipe's `[model]` factory, trained (seeded with the recipe's seed) for
    `epochs` passes over the training digits at the recipe's input size. Files already present
    are reused, so this is instant after the first call with the same settings.
    """
    raw, _ = demo_recipe_data(recipe)
    return _prepare(ensure_writable_dir(demo_dir(cache)), demo_settings(raw, epochs=epochs))


def _prepare(directory: Path, settings: dict[str, Any]) -> DemoFiles:
    files = demo_files(directory, settings)
    if all(p.is_file() for p in (files.weights, files.calibration, files.evaluation, files.train)):
        return files
    import time

    import torch

    from nnship.datasets import digits_images
    from nnship.models.train import accuracy, seed_everything, train_classifier
    from nnship.sources.models import load_model

    spec = settings["input"]
    train, test = digits_images(
        size=spec["size"],
        channels=spec["channels"],
        seed=settings["seed"],
        input_name=spec["name"],
    )
    if not files.weights.is_file():
        seed_everything(settings["seed"])  # the initial weights too: same settings, same model
        module = load_model(settings["model"], factory_kwargs=settings["factory_kwargs"]).module
        if module is None:
            raise RecipeError(
                f"demo recipe: [model] source {settings['model']!r} is no PyTorch model factory "
                "the demo can train (use `nnship build` for a trained model)"
            )
        opts = settings["training"]
        log.info(
            "Training the demo model %s on the digits (first use; %d epochs, seed %d)",
            settings["model"],
            opts["epochs"],
            settings["seed"],
        )
        start = time.perf_counter()
        module = train_classifier(
            module,
            train,
            epochs=opts["epochs"],
            lr=opts["lr"],
            batch_size=opts["batch_size"],
            seed=settings["seed"],
        )
        log.info(
            "Demo model trained in %.0f s; test accuracy %.1f%%",
            time.perf_counter() - start,
            100 * accuracy(module, test),
        )
        with atomic_path(files.weights) as tmp:
            torch.save(module.state_dict(), tmp)
    for path, split in (
        (files.calibration, train.take(CALIBRATION_SAMPLES)),
        (files.evaluation, test),
        (files.train, train),
    ):
        if not path.is_file():
            _save_npz(path, {**split.inputs, "labels": split.labels})
    return files


def demo_recipe(files: DemoFiles, recipe: str | Path | None = None) -> Any:
    """The demo `Recipe` pointing at `files`; sections whose stage is not installed are
    dropped (with a log line), so the demo runs everything this installation can do."""
    raw, path = demo_recipe_data(recipe)
    return _recipe(raw, path, files)


def _recipe(raw: dict[str, Any], path: Path | None, files: DemoFiles) -> Any:
    from nnship.recipe import recipe_from_data, section_available

    raw = dict(raw)
    for section in ("prune", "distill", "quantize"):
        if section in raw and not section_available(section):
            log.warning("demo: skipping [%s]: that stage is not installed", section)
            del raw[section]
    raw["model"] = {**raw.get("model", {}), "weights": str(files.weights)}
    data = {key: dict(value) for key, value in raw.get("data", {}).items()}
    for split in ("calibration", "evaluation", "train"):
        data.setdefault(split, {})["path"] = str(getattr(files, split))
    raw["data"] = data
    return recipe_from_data(
        raw,
        name=str(path) if path is not None else "embedded demo recipe",
        base_dir=path.parent if path is not None else files.directory,
        recipe_path=path,
    )


def html_report_path(result: Any) -> Path | None:
    """Where `demo` wrote the HTML report of `result` (beside report.json), if it did."""
    if result.report_path is None:
        return None
    path = Path(result.report_path).with_name("report.html")
    return path if path.is_file() else None


def run_bundle(result: Any) -> Any:
    """Load the bundle the build ended with through `nnship.runtime` (what a device does:
    hashes checked first), run its stored sample inputs on the artifact `target="auto"` picks
    and compare with the stored outputs. Returns the `SmokeTestResult` (None without a bundle,
    e.g. when a gate failed); a mismatch is a `BundleError`."""
    if getattr(result, "bundle_path", None) is None:
        return None
    from nnship.runtime import Bundle, BundleError

    smoke = Bundle.load(result.bundle_path).smoke_test("auto")
    log.info("bundle %s: %s", result.bundle_path, smoke.summary())
    if not smoke.passed:
        raise BundleError(f"{result.bundle_path}: the smoke test failed: {smoke.summary()}")
    return smoke


def demo(
    *,
    cache: str | Path | None = None,
    output_dir: str | Path | None = None,
    recipe: str | Path | None = None,
    reuse: bool = True,
    bundle_dir: str | Path | None = None,
) -> Any:
    """Prepare the demo model and data (cached), then build the demo recipe and write its HTML
    report beside the JSON and Markdown ones.

    `cache` defaults to `$NNSHIP_CACHE_DIR` or `~/.cache/nnship`; `output_dir` to `build/demo`;
    `recipe` to `examples/demo/recipe.toml` (or the embedded copy). The build's stage cache is
    `<cache>/demo/stages`, shared by every demo build. Returns the `BuildResult`.
    """
    from nnship.pipeline import build
    from nnship.validate.render.html import write_html

    raw, path = demo_recipe_data(recipe)
    directory = ensure_writable_dir(demo_dir(cache))
    files = _prepare(directory, demo_settings(raw))
    if "bundle" in raw:
        # where the user runs the demo (like build/demo), not beside the recipe file
        target = Path(bundle_dir) if bundle_dir is not None else Path("dist") / "demo"
        raw = {**raw, "bundle": {**raw["bundle"], "output": str(target.absolute())}}
    result = build(
        _recipe(raw, path, files),
        output_dir=output_dir,
        reuse=reuse,
        cache=directory / "stages",
    )
    if result.report_path is not None:
        write_html(result.report, Path(result.report_path).with_name("report.html"))
    result.bundle_check = run_bundle(result)
    return result
