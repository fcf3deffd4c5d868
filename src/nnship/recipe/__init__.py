"""The recipe: one TOML file describing a whole build, parsed once into typed, validated models.

- `schema`: `Recipe` and its own sections (`[model]`, `[data]`), loading, overrides
- `sections`: the stage sections, each owned by its stage's package (imported without torch)
- `paths`: how paths inside a recipe resolve
- `format`: pydantic errors as one line per problem; TOML out (tomli-w)

Importing this package never imports torch.
"""

from nnship.recipe.format import dumps_toml, format_validation_error
from nnship.recipe.paths import cache_dir, expand_path_text, resolve_paths, resolve_source
from nnship.recipe.schema import (
    DataSection,
    InputTable,
    ModelConfig,
    Recipe,
    apply_overrides,
    load_recipe,
    parse_override,
    parse_recipe,
    recipe_from_data,
    recipe_to_toml,
)
from nnship.recipe.sections import section_available

__all__ = [
    "DataSection",
    "InputTable",
    "ModelConfig",
    "Recipe",
    "apply_overrides",
    "cache_dir",
    "dumps_toml",
    "expand_path_text",
    "format_validation_error",
    "load_recipe",
    "parse_override",
    "parse_recipe",
    "recipe_from_data",
    "recipe_to_toml",
    "resolve_paths",
    "resolve_source",
    "section_available",
]
