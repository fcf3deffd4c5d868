"""Paths inside a recipe: relative to the recipe file, `~` and `${VAR}` expanded
(`${NNSHIP_CACHE_DIR}` defaults to `~/.cache/nnship`); files checked to exist where asked."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nnship.core.errors import RecipeError

# The functions below take the `Recipe` typed as `Any`: schema.py calls them while it builds
# one, so this module must not import schema.py (no circle).
Recipe = Any

__all__ = ["cache_dir", "expand_path_text", "resolve_paths", "resolve_source"]


def cache_dir() -> Path:
    """nnship's cache folder: `$NNSHIP_CACHE_DIR`, else `~/.cache/nnship`."""
    env = os.environ.get("NNSHIP_CACHE_DIR")
    return Path(env).expanduser() if env else Path("~/.cache/nnship").expanduser()


def expand_path_text(text: str, where: str) -> str:
    """Expand `~` and `${VAR}`/`$VAR`; `${NNSHIP_CACHE_DIR}` defaults to nnship's cache folder.
    An unset variable is an error naming `where`."""

    def replace(match: re.Match[str]) -> str:
        var = match.group(1) or match.group(2)
        if var in os.environ:
            return os.environ[var]
        if var == "NNSHIP_CACHE_DIR":
            return str(cache_dir())
        raise RecipeError(f"{where}: environment variable '{var}' is not set")

    expanded = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", replace, text)
    return os.path.expanduser(expanded)


def _is_module_ref(text: str) -> bool:
    """`pkg.mod:attr` (an importable module path and an attribute name)."""
    return bool(re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", text))


def _resolve_file(text: str, base: Path, where: str, *, must_exist: bool) -> str:
    path = Path(expand_path_text(text, where))
    if not path.is_absolute():
        path = base / path
    if must_exist and not path.exists():
        raise RecipeError(f"{where}: file '{path}' does not exist")
    return str(path)


def resolve_source(text: str, base: Path, where: str, *, must_exist: bool) -> str:
    """Resolve a model or data source string: `pkg.mod:attr` stays as is, `file.py:attr` and
    plain paths become absolute (relative to `base`)."""
    if _is_module_ref(text) and not text.split(":", 1)[0].endswith(".py"):
        return text
    head, sep, attr = text.rpartition(":")
    if sep and head.endswith(".py"):
        return _resolve_file(head, base, where, must_exist=must_exist) + ":" + attr
    return _resolve_file(text, base, where, must_exist=must_exist)


def resolve_paths(recipe: Recipe, name: str, *, check_files: bool) -> None:
    """Make the recipe's model, weights, output folder, data and backend paths absolute
    (relative to `recipe.base_dir`); `check_files` raises for model/data files that are missing."""
    base = recipe.base_dir
    model = recipe.model
    model.source = resolve_source(
        model.source, base, f"{name}: [model] source", must_exist=check_files
    )
    if model.weights:
        model.weights = _resolve_file(
            model.weights, base, f"{name}: [model] weights", must_exist=check_files
        )
    if recipe.output_dir:
        recipe.output_dir = _resolve_file(
            recipe.output_dir, base, f"{name}: output_dir", must_exist=False
        )
    for split in ("calibration", "evaluation", "train"):
        cfg = getattr(recipe.data, split)
        if cfg is None:
            continue
        field = _data_path_field(cfg)
        value = getattr(cfg, field, None)
        if isinstance(value, str | Path) and str(value):
            resolved = resolve_source(
                str(value), base, f"{name}: [data.{split}] {field}", must_exist=check_files
            )
            new = type(value)(resolved) if isinstance(value, Path) else resolved
            # section models may be frozen: replace the section rather than mutate it
            setattr(recipe.data, split, cfg.model_copy(update={field: new}))
    _resolve_backend_paths(recipe, name)
    _resolve_bundle_paths(recipe, name, check_files=check_files)


def _resolve_bundle_paths(recipe: Recipe, name: str, *, check_files: bool) -> None:
    """`[bundle] output` and `labels_file` are relative to the recipe."""
    bundle = getattr(recipe, "bundle", None)
    if bundle is None or not isinstance(bundle, BaseModel):
        return
    updates = {}
    if getattr(bundle, "output", None):
        updates["output"] = _resolve_file(
            bundle.output, recipe.base_dir, f"{name}: [bundle] output", must_exist=False
        )
    if getattr(bundle, "labels_file", None):
        updates["labels_file"] = _resolve_file(
            bundle.labels_file,
            recipe.base_dir,
            f"{name}: [bundle] labels_file",
            must_exist=check_files,
        )
    if updates:
        recipe.bundle = bundle.model_copy(update=updates)


def _resolve_backend_paths(recipe: Recipe, name: str) -> None:
    """Path-valued backend options (model caches, timing caches) are relative to the recipe."""
    backends = recipe.backends
    for backend_name in type(backends).model_fields:
        options = getattr(backends, backend_name)
        if not isinstance(options, BaseModel):
            continue
        updates = {}
        for field in type(options).model_fields:
            value = getattr(options, field)
            if isinstance(value, Path) and not value.is_absolute():
                where = f"{name}: [backends.{backend_name}] {field}"
                updates[field] = Path(
                    _resolve_file(str(value), recipe.base_dir, where, must_exist=False)
                )
        if updates:
            setattr(backends, backend_name, options.model_copy(update=updates))


def _data_path_field(cfg: BaseModel) -> str:
    for candidate in ("path", "source"):
        if candidate in type(cfg).model_fields:
            return candidate
    return "path"
