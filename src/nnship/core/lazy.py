"""Package faces that import their modules on first use (PEP 562 `__getattr__`), so importing a
config model (`nnship.quantize.config`, which runs `nnship/quantize/__init__.py` first) never
imports the stage's heavy modules, onnx or torch."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `exports[name]` (a module path) on the
    first access of `name` and caches the value on the package.

        __getattr__ = lazy_exports(__name__, {"quantize": "nnship.quantize.pipeline"})

    Where an exported function shares its name with a submodule (`nnship.validate.validate`),
    importing the submodule would rebind the package attribute to the module, as it does for
    every submodule; the package keeps the function instead, as an eager import would have.
    """
    module = sys.modules[package]

    class _LazyPackage(type(module)):  # type: ignore[misc]
        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__:
                value = getattr(value, name, value)
            super().__setattr__(name, value)

    module.__class__ = _LazyPackage

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(module, name, value)
        return value

    return __getattr__
