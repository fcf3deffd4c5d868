"""The recipe: one TOML file describing a whole build, parsed once into typed, validated models.

Every stage owns its section's model in its own package (`[export]` is
`nnship.exporter.config.ExportConfig`, `[quantize]` is `nnship.quantize.config.QuantizeConfig`,
...); this module assembles them into `Recipe` and turns pydantic's errors into one line per
problem that names the recipe file, the section and the key (with a "did you mean" suggestion
for typos). Paths inside a recipe are relative to the recipe file (see `nnship.recipe.paths`).
Overrides (`--set key=value`) are applied to the parsed data before validation, so a typo in an
override is reported like a typo in the file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nnship.core import TensorSpec, toml
from nnship.core.errors import RecipeError
from nnship.recipe.bundle_section import BundleConfig
from nnship.recipe.format import dumps_toml, format_validation_error
from nnship.recipe.paths import cache_dir, resolve_paths
from nnship.recipe.sections import (
    BackendsConfig,
    DataConfig,
    DistillConfig,
    ExportConfig,
    PruneConfig,
    QuantizeConfig,
    ValidateConfig,
    section_available,
)
from nnship.recipe.tune_section import TuneConfig

__all__ = [
    "DataSection",
    "InputTable",
    "ModelConfig",
    "Recipe",
    "apply_overrides",
    "cache_dir",
    "load_recipe",
    "parse_override",
    "parse_recipe",
    "recipe_to_toml",
    "section_available",
]

_FORBID = ConfigDict(extra="forbid")
_MODEL_FILE_SUFFIXES = (".pt2", ".onnx", ".pt", ".pth", ".ckpt", ".bin")


class InputTable(BaseModel):
    """One model input as a TOML table: `{name = "x", shape = [1, 3, 32, 32], dtype = "float32"}`."""

    model_config = _FORBID
    name: str
    shape: list[int | str]
    dtype: str = "float32"


class ModelConfig(BaseModel):
    """`[model]`: where the model comes from and its example inputs."""

    model_config = _FORBID
    source: str
    """`pkg.mod:factory`, `path/file.py:factory`, a `.pt2`, a `.onnx`, or a pickled module."""
    inputs: list[str | InputTable] = Field(default_factory=list)
    """Example inputs: `"x:1x3x32x32[:dtype]"` strings or tables. Required to export a factory."""
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the factory."""
    weights: str | None = None
    """A state dict (loaded with `weights_only=True`) for the factory's module."""
    trust_pickle: bool = False
    """Allow loading a fully pickled module. Defaults to false: pickles can run code."""

    @field_validator("source")
    @classmethod
    def _source_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def input_specs(self) -> list[TensorSpec] | None:
        """The declared inputs as `TensorSpec`s, or None when none are declared."""
        if not self.inputs:
            return None
        specs = []
        for item in self.inputs:
            if isinstance(item, str):
                specs.append(TensorSpec.parse(item))
            else:
                specs.append(TensorSpec(item.name, tuple(item.shape), item.dtype))
        return specs


class DataSection(BaseModel):
    """`[data]`: calibration, evaluation and training data (each a `DataConfig`).

    Evaluation defaults to the calibration data (with a warning); training data (Taylor pruning
    importance, distillation) defaults to the calibration data.
    """

    model_config = _FORBID
    calibration: DataConfig | None = None
    evaluation: DataConfig | None = None
    train: DataConfig | None = None


class Recipe(BaseModel):
    """A whole build. Absent optional sections (`prune`, `distill`, `quantize`) skip their stage."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    """Build name; the default output folder is `build/<name>` (relative to the working dir)."""
    seed: int = 0
    """Seed for every random choice (training, sampling), so builds repeat exactly."""
    output_dir: str | None = None
    """Build folder; relative to the recipe file. Defaults to `build/<name>` in the working dir."""
    model: ModelConfig
    data: DataSection = Field(default_factory=DataSection)
    export: ExportConfig = Field(default_factory=ExportConfig)
    prune: PruneConfig | None = None
    distill: DistillConfig | None = None
    quantize: QuantizeConfig | None = None
    backends: BackendsConfig = Field(default_factory=BackendsConfig)
    validation: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    tune: TuneConfig | None = None
    """`[tune]`: the search space of `nnship tune` (see `nnship.tune.space`); `build` ignores it."""
    bundle: BundleConfig | None = None
    """`[bundle]`: end the build with a deployable bundle (`nnship.recipe.bundle_section`)."""

    _path: Path | None = None
    _base_dir: Path = Path(".")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError(
                f"'{value}' must be a folder-safe name (letters, digits, '.', '_', '-')"
            )
        return value

    @property
    def path(self) -> Path | None:
        """The recipe file this was read from (None when built in Python)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the recipe are resolved against."""
        return self._base_dir

    def resolved_output_dir(self, override: str | Path | None = None) -> Path:
        """`override` (relative to the working dir), else `output_dir`, else `build/<name>`."""
        if override is not None:
            return Path(override).expanduser().absolute()
        if self.output_dir:
            return Path(self.output_dir)
        return Path("build", self.name).absolute()

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe (defaults included) as plain JSON-able data."""
        return self.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------------------------------------
# Loading


def load_recipe(
    path: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    check_files: bool = True,
) -> Recipe:
    """Read, validate and resolve a recipe file.

    `overrides` maps dotted keys to values (`{"validate.gates.max_top1_drop": 0.5}`), applied
    before validation so a typo'd override is reported like a typo in the file. Raises
    `RecipeError` naming the file, section and key for TOML syntax errors (with the line),
    unknown keys, wrong types, and (with `check_files`, the default) files that do not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"Recipe file '{path}' does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"Cannot read recipe file '{path}': {exc}") from exc
    return parse_recipe(
        text,
        name=str(path),
        base_dir=path.parent,
        overrides=overrides,
        check_files=check_files,
        recipe_path=path,
    )


def parse_recipe(
    text: str,
    *,
    name: str = "recipe.toml",
    base_dir: str | Path = ".",
    overrides: dict[str, Any] | None = None,
    check_files: bool = True,
    recipe_path: Path | None = None,
) -> Recipe:
    """Parse recipe TOML `text`; `name` is used in messages, `base_dir` anchors relative paths."""
    try:
        raw = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise RecipeError(f"{name}: invalid TOML: {exc}") from exc
    return recipe_from_data(
        raw,
        name=name,
        base_dir=base_dir,
        overrides=overrides,
        check_files=check_files,
        recipe_path=recipe_path,
    )


def recipe_from_data(
    raw: dict[str, Any],
    *,
    name: str = "recipe",
    base_dir: str | Path = ".",
    overrides: dict[str, Any] | None = None,
    check_files: bool = True,
    recipe_path: Path | None = None,
) -> Recipe:
    """Validate recipe data (as parsed from TOML), after applying `overrides` (dotted keys) to
    a copy of it, and resolve its paths against `base_dir`."""
    raw = copy.deepcopy(raw)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, name)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, name, Recipe)) from exc
    recipe._path = recipe_path
    recipe._base_dir = Path(base_dir).absolute()
    resolve_paths(recipe, name, check_files=check_files)
    return recipe


def apply_overrides(
    recipe: Recipe, overrides: dict[str, Any], *, without: Iterable[str] = ()
) -> Recipe:
    """A new `Recipe`: `recipe`'s data without the top-level sections named in `without` and
    with `overrides` (dotted keys) applied, validated again.

    Only the keys the recipe set are carried over (defaults stay defaults, so a setting that
    depends on whether a key was given, such as `[quantize] profile`, keeps its meaning); its
    paths are already absolute and stay as they are.
    """
    raw = recipe.model_dump(mode="json", by_alias=True, exclude_unset=True)
    for section in without:
        raw.pop(section, None)
    name = str(recipe.path) if recipe.path else "recipe"
    return recipe_from_data(
        raw,
        name=name,
        base_dir=recipe.base_dir,
        overrides=overrides,
        check_files=False,
        recipe_path=recipe.path,
    )


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a `--set key.path=value` override; the value is read as TOML (`0.5`, `true`,
    `["int8"]`), else kept as a plain string."""
    if "=" not in text:
        raise RecipeError(f"Bad override '{text}': expected KEY=VALUE, e.g. seed=1")
    key, value = text.split("=", 1)
    return key.strip(), toml.parse_literal_or_text(value)


def _set_dotted(raw: dict[str, Any], key: str, value: Any, name: str) -> None:
    parts = [p for p in key.split(".") if p]
    if not parts:
        raise RecipeError(f"{name}: empty override key")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise RecipeError(f"{name}: cannot override '{key}': '{where}' is not a table")
        node = child
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# Printing


def recipe_to_toml(recipe: Recipe) -> str:
    """The fully resolved recipe as TOML (keys with no value, i.e. None, are left out)."""
    return dumps_toml(recipe.to_dict())
