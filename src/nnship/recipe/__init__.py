"""The recipe: one TOML file describing a whole build (see `nnship.recipe.schema`)."""

from nnship.recipe.schema import *  # noqa: F403
from nnship.recipe.schema import (  # noqa: F401
    _resolve_paths,
    dumps_toml,
    expand_path_text,
    parse_override,
    resolve_source,
)
from nnship.recipe.schema import __all__  # noqa: F401
