"""`write_bundle`: a finished build folder -> one reproducible, verifiable bundle folder.

Layout of the bundle (docs/bundle.md):

    manifest.json                          written last; lists every other file
    README.md                              for the device team
    artifacts/<backend>-<precision>/...    the artifact's files (TensorRT: QDQ ONNX + build kit)
    samples/inputs.npz                     sample inputs, keyed by input name
    samples/expected.<backend>-<precision>.npz   each runnable artifact's outputs on them

The folder is written into a temporary folder beside the target (`.<name>.<random>.tmp`),
`manifest.json` last, then renamed onto the target, so an interrupted write leaves no folder
`nnship bundle verify` accepts. The same build folder gives the same bytes (see
`nnship.bundle.reproducible`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nnship
from nnship.bundle import entries
from nnship.bundle.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ArtifactEntry,
    BundleError,
    FileEntry,
    Manifest,
    Preprocessing,
    Samples,
    TensorSpec,
    Tolerance,
)
from nnship.bundle.reproducible import (
    built_at,
    normalize_tree,
    source_date_epoch,
    write_npz,
    write_tar_gz,
)
from nnship.bundle.source import BuildFolder, BuiltArtifact, read_build_folder
from nnship.core.errors import OutputPathError
from nnship.core.fileio import atomic_path, sha256_file

log = logging.getLogger(__name__)

README_NAME = "README.md"
SAMPLES_DIR = "samples"


@dataclass
class BundleResult:
    """What `write_bundle` wrote: the folder, the optional archive, and the manifest."""

    path: Path
    manifest: Manifest
    archive: Path | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    """Artifact id -> bytes of its files in the bundle."""

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.manifest.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "archive": str(self.archive) if self.archive else None,
            "name": self.manifest.name,
            "model_version": self.manifest.model_version,
            "schema_version": self.manifest.schema_version,
            "artifacts": [a.id for a in self.manifest.artifacts],
            "sizes": dict(self.sizes),
            "size_bytes": self.size_bytes,
        }


def write_bundle(
    build_dir: Path | str,
    out_dir: Path | str,
    *,
    targets: list[str] | None = None,
    samples: int | None = None,
    preprocessing: Preprocessing | dict[str, Any] | None = None,
    labels: list[str] | None = None,
    archive: bool | None = None,
) -> BundleResult:
    """Bundle the finished build folder `build_dir` into `out_dir` (replaced if it is a bundle).

    `targets`: artifact ids ("openvino/int8"; default: the recipe's `[bundle] targets`, else
    every finished artifact). `samples` (default the recipe's, else 4), `preprocessing`,
    `labels` and `archive` (also `<out_dir>.tar.gz`) default to the build recipe's `[bundle]`
    section. Raises `BundleError` for a build folder with no finished artifacts or a target it
    did not build.
    """
    from nnship.recipe.bundle_section import DEFAULT_SAMPLES, normalize_target

    build = read_build_folder(build_dir)
    recipe = _recipe(build)
    config = getattr(recipe, "bundle", None) if recipe is not None else None
    wanted = targets if targets is not None else (config.targets if config else None)
    chosen = _choose(build, [_target(t, normalize_target) for t in wanted] if wanted else None)
    count = samples or (config.samples if config else DEFAULT_SAMPLES)
    prep = _preprocessing(preprocessing, config)
    label_list = labels if labels is not None else _config_labels(config, recipe)
    want_archive = archive if archive is not None else bool(config and config.archive)

    out = Path(out_dir).expanduser().absolute()
    _check_target(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=_parent(out)))
    try:
        manifest, sizes = _populate(tmp, build, recipe, chosen, count, prep, label_list)
        _replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    archive_path = None
    if want_archive:
        archive_path = write_archive(out)
    log.info("bundle written to %s (%d artifacts)", out, len(manifest.artifacts))
    return BundleResult(out, manifest, archive_path, sizes)


def write_archive(bundle_dir: Path) -> Path:
    """`<bundle_dir>.tar.gz` beside the folder, reproducible, written atomically."""
    final = bundle_dir.with_name(bundle_dir.name + ".tar.gz")
    with atomic_path(final, suffix=".tar.gz") as tmp:
        write_tar_gz(bundle_dir, tmp, arcname=bundle_dir.name, epoch=source_date_epoch())
    os.chmod(final, 0o644)
    return final


def _target(text: str, normalize: Any) -> str:
    try:
        return normalize(text)
    except ValueError as exc:
        raise BundleError(f"bundle target: {exc}") from None


def _choose(build: BuildFolder, wanted: list[str] | None) -> list[BuiltArtifact]:
    if wanted is None:
        return list(build.artifacts)
    built = [a.id for a in build.artifacts]
    missing = [t for t in wanted if t not in built]
    if missing:
        raise BundleError(
            f"bundle target(s) {', '.join(missing)} were not built in '{build.path}' "
            f"(it has: {', '.join(built)})"
        )
    return [build.artifact(t) for t in dict.fromkeys(wanted)]


def _recipe(build: BuildFolder) -> Any:
    """The build's recipe as a `Recipe` (None when it no longer validates, e.g. a section's
    package is missing here): data paths for the samples, `[bundle]` defaults."""
    from nnship.core.errors import NnshipError
    from nnship.recipe.schema import recipe_from_data

    if not build.recipe:
        return None
    try:
        return recipe_from_data(build.recipe, name=str(build.path), check_files=False)
    except NnshipError as exc:
        log.warning("bundle: the build's recipe does not validate here (%s); no samples", exc)
        return None


def _preprocessing(given: Any, config: Any) -> Preprocessing | None:
    if given is None:
        return config.preprocessing if config is not None else None
    if isinstance(given, Preprocessing):
        return given
    from pydantic import ValidationError

    try:
        return Preprocessing.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"preprocessing.{where}: {first['msg']}") from None


def _config_labels(config: Any, recipe: Any) -> list[str] | None:
    if config is None:
        return None
    if config.labels is not None:
        return list(config.labels)
    if config.labels_file:
        from nnship.recipe.bundle_section import read_labels

        path = Path(config.labels_file).expanduser()
        return read_labels(path if path.is_absolute() else recipe.base_dir / path)
    return None


def _parent(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"Cannot create '{out.parent}': {exc.strerror}") from None
    return out.parent


def _check_target(out: Path) -> None:
    """Replace only an earlier bundle or an empty folder; never a folder of other files."""
    if out.is_file() or out.is_symlink():
        raise OutputPathError(f"Bundle output '{out}' exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise OutputPathError(
            f"Bundle output '{out}' is a non-empty folder that is not a bundle; "
            "choose another -o or remove it"
        )


def _replace(tmp: Path, out: Path) -> None:
    """Rename `tmp` onto `out`; an earlier bundle there is moved aside first, then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rmdir(old)
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The folder's contents


def _populate(
    root: Path,
    build: BuildFolder,
    recipe: Any,
    chosen: list[BuiltArtifact],
    count: int,
    preprocessing: Preprocessing | None,
    labels: list[str] | None,
) -> tuple[Manifest, dict[str, int]]:
    from nnship.bundle.samples import expected_outputs, pick_samples, run_model

    inputs, outputs = _specs(build, chosen)
    _check_preprocessing(preprocessing, inputs)
    seed = int(getattr(recipe, "seed", 0) or 0)
    picked = pick_samples(recipe, [_core_spec(s) for s in inputs], count, seed=seed)
    (root / SAMPLES_DIR).mkdir()
    write_npz(root / SAMPLES_DIR / "inputs.npz", picked.inputs)
    backends_config = getattr(recipe, "backends", None)
    reference = None
    if build.float_onnx is not None:
        reference = run_model("onnxruntime", build.float_onnx, picked.inputs, threads=1)

    described: list[ArtifactEntry] = []
    sizes: dict[str, int] = {}
    for built in chosen:
        folder = root / "artifacts" / built.id.replace("/", "-")
        files = _copy_files(built, folder, root)
        expected = expected_outputs(
            built, picked.inputs, config=backends_config, reference=reference
        )
        expected_rel = None
        if expected is not None:
            expected_rel = f"{SAMPLES_DIR}/expected.{built.id.replace('/', '-')}.npz"
            write_npz(root / expected_rel, expected.outputs)
        described.append(
            ArtifactEntry(
                id=built.id,
                backend=built.backend,  # type: ignore[arg-type]
                precision=built.precision,
                device=entries.device(built),
                runtime=entries.runtime_requirement(build, built),
                entry=(folder / built.entry.relative_to(built.folder)).relative_to(root).as_posix(),
                files=files,
                validation=entries.validation(build.report, built),
                tolerance=Tolerance(**expected.tolerance) if expected else None,
                expected=expected_rel,
                build_kit=entries.build_kit(built, folder, root),
            )
        )
        sizes[built.id] = sum(f.size for f in files)

    input_hashes = entries.input_hashes(build, recipe, picked.fingerprints)
    epoch = source_date_epoch()
    draft = dict(
        schema_version=SCHEMA_VERSION,
        nnship_version=nnship.__version__,
        name=str(build.recipe.get("name") or build.path.name),
        model_version="",
        built_at=built_at(epoch),
        recipe=build.recipe,
        input_hashes=input_hashes,
        inputs=inputs,
        outputs=outputs,
        preprocessing=preprocessing,
        labels=labels,
        artifacts=described,
        samples=Samples(
            inputs=f"{SAMPLES_DIR}/inputs.npz", count=picked.count, source=picked.source
        ),
        files=[],
    )
    draft["model_version"] = f"{draft['name']}@{entries.version_hash(input_hashes, described)}"
    from nnship.bundle.readme import render_readme

    (root / README_NAME).write_text(
        render_readme(Manifest(**draft)), encoding="utf-8", newline="\n"
    )
    draft["files"] = _file_entries(root)
    manifest = Manifest(**draft)
    normalize_tree(root, epoch)
    write_manifest(root, manifest, epoch)
    return manifest, sizes


def write_manifest(root: Path, manifest: Manifest, epoch: int | None) -> None:
    """`manifest.json`, the last file written: its presence marks the folder finished."""
    path = root / MANIFEST_NAME
    path.write_text(manifest.to_json(), encoding="utf-8", newline="\n")
    os.chmod(path, 0o644)
    os.utime(path, (epoch or 0, epoch or 0))
    os.utime(root, (epoch or 0, epoch or 0))


def _specs(
    build: BuildFolder, chosen: list[BuiltArtifact]
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from nnship.onnx.graph import load_onnx, onnx_input_specs, onnx_output_specs

    onnx_path = build.float_onnx or next(
        (a.entry for a in chosen if a.entry.suffix == ".onnx"), None
    )
    if onnx_path is None:
        raise BundleError(
            f"'{build.path}': no ONNX model (export/model.fp32.onnx) to read the input and "
            "output specs from"
        )
    model = load_onnx(onnx_path, load_weights=False)

    def convert(specs: Any) -> list[TensorSpec]:
        return [TensorSpec(name=s.name, shape=list(s.shape), dtype=s.dtype) for s in specs]

    return convert(onnx_input_specs(model)), convert(onnx_output_specs(model))


def _core_spec(spec: TensorSpec) -> Any:
    from nnship.core import TensorSpec as CoreSpec

    return CoreSpec(spec.name, tuple(spec.shape), spec.dtype)


def _check_preprocessing(prep: Preprocessing | None, inputs: list[TensorSpec]) -> None:
    if prep is None:
        return
    names = [s.name for s in inputs]
    if prep.input is not None and prep.input not in names:
        raise BundleError(
            f"preprocessing.input '{prep.input}' is not a model input (inputs: {', '.join(names)})"
        )
    if prep.input is None and len(names) != 1:
        raise BundleError(
            f"preprocessing.input: the model has {len(names)} inputs ({', '.join(names)}); "
            "name the one the image feeds"
        )
    spec = next(s for s in inputs if s.name == (prep.input or names[0]))
    if len(spec.shape) != 4:
        raise BundleError(
            f"preprocessing: input '{spec.name}' has shape {spec.shape}, not an image batch "
            "(4 dims)"
        )
    channels = spec.shape[1] if prep.layout == "NCHW" else spec.shape[3]
    want = 1 if prep.color == "GRAY" else 3
    if isinstance(channels, int) and channels != want:
        raise BundleError(
            f"preprocessing.color {prep.color} gives {want} channel(s) but input "
            f"'{spec.name}' has {channels} ({prep.layout})"
        )
    for key in ("mean", "std"):
        values = getattr(prep, key)
        if values is not None and len(values) not in (1, want):
            raise BundleError(f"preprocessing.{key} has {len(values)} values for {want} channel(s)")


def _copy_files(built: BuiltArtifact, folder: Path, root: Path) -> list[FileEntry]:
    copied = []
    for source in built.files:
        target = folder / source.relative_to(built.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)  # bytes and the executable bit (build kit scripts)
        copied.append(_entry(target, root))
    return sorted(copied, key=lambda e: e.path)


def _entry(path: Path, root: Path) -> FileEntry:
    return FileEntry(
        path=path.relative_to(root).as_posix(), sha256=sha256_file(path), size=path.stat().st_size
    )


def _file_entries(root: Path) -> list[FileEntry]:
    files = [p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME]
    return sorted((_entry(p, root) for p in files), key=lambda e: e.path)
