"""The recipe's stage sections, each owned by its stage's package (the sections of the packages
above the recipe, `[tune]` and `[bundle]`, are the recipe's own: `tune_section.py`,
`bundle_section.py`; those packages import the recipe, never the other way round).

A stage's config model is used when its package imports; otherwise the section gets a
placeholder that accepts only an empty table and says which package is missing, so the recipe
(and `import nnship.recipe`) keeps working in installations without optional stages.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

log = logging.getLogger(__name__)

_MISSING: dict[str, str] = {}
"""section name -> why its stage's config could not be imported."""


def _unavailable(section: str, module: str) -> type[BaseModel]:
    """A config model for a stage that is not installed: only `[section]` with no keys passes."""

    class Unavailable(BaseModel):
        model_config = ConfigDict(extra="forbid")

        @model_validator(mode="before")
        @classmethod
        def _refuse(cls, data: Any) -> Any:
            if data:
                raise ValueError(
                    f"this nnship installation has no {module} ({_MISSING.get(section, '')}); "
                    f"the [{section}] section cannot be used"
                )
            return data

    Unavailable.__name__ = f"Unavailable_{section}"
    return Unavailable


def _stage_class(section: str, module: str, name: str) -> type[BaseModel]:
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        _MISSING[section] = f"{type(exc).__name__}: {exc}"
        log.debug("recipe section [%s] unavailable: %s", section, exc)
        return _unavailable(section, module)
    except Exception as exc:  # a broken stage package must not break recipes that skip it
        _MISSING[section] = f"{module} failed to import: {type(exc).__name__}: {exc}"
        log.warning("recipe section [%s] unavailable: %s", section, _MISSING[section])
        return _unavailable(section, module)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):  # pragma: no cover
        _MISSING[section] = f"{module}.{name} is not a pydantic model"
        return _unavailable(section, module)
    return cls


def section_available(section: str) -> bool:
    """True if the stage behind `[section]` is installed (its config model imported)."""
    return section not in _MISSING


if TYPE_CHECKING:  # type checkers see the real models; at run time they may be placeholders
    from nnship.backends.config import BackendsConfig
    from nnship.compress.config import DistillConfig, PruneConfig
    from nnship.exporter.config import ExportConfig
    from nnship.quantize.config import QuantizeConfig
    from nnship.sources.config import DataConfig
    from nnship.validate.config import ValidateConfig
else:
    DataConfig = _stage_class("data", "nnship.sources.config", "DataConfig")
    ExportConfig = _stage_class("export", "nnship.exporter.config", "ExportConfig")
    PruneConfig = _stage_class("prune", "nnship.compress.config", "PruneConfig")
    DistillConfig = _stage_class("distill", "nnship.compress.config", "DistillConfig")
    QuantizeConfig = _stage_class("quantize", "nnship.quantize.config", "QuantizeConfig")
    BackendsConfig = _stage_class("backends", "nnship.backends.config", "BackendsConfig")
    ValidateConfig = _stage_class("validate", "nnship.validate.config", "ValidateConfig")
