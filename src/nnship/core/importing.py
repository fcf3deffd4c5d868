"""Resolve `package.module:name` and `path/to/file.py:name` strings to Python objects.

Shared by model factories and data callables, so both give the same clear errors
(the module and its import error, the missing attribute, the file that does not exist).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from nnship.core.errors import NnshipError

# `a.b.c:attr` or `some/dir/file.py:attr.sub`; the attribute part is a dotted identifier.
_SPEC = re.compile(r"^(?P<target>[^:]+(?:\.py)?):(?P<attr>[A-Za-z_][\w.]*)$")


def looks_like_object_spec(text: str) -> bool:
    """True if `text` reads as `module:name` or `file.py:name` (not as a plain file path)."""
    match = _SPEC.match(text)
    if not match:
        return False
    target = match.group("target")
    return (
        target.endswith(".py")
        or re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", target) is not None
    )


def split_object_spec(text: str, *, what: str, error: type[NnshipError]) -> tuple[str, str]:
    """Split `module:name` into its two parts, raising `error` with an example if malformed."""
    match = _SPEC.match(text)
    if not match:
        raise error(
            f"{what} '{text}' is not of the form 'package.module:name' or 'path/file.py:name'"
        )
    return match.group("target"), match.group("attr")


def _import_file(path: Path, *, what: str, error: type[NnshipError]) -> Any:
    if not path.is_file():
        raise error(f"{what}: Python file '{path}' does not exist")
    resolved = path.resolve()
    # One module name per file (so two scripts both called model.py never collide) that is
    # stable across runs, so pickles/dataclasses referring to it resolve the same way.
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", resolved.stem)
    name = f"nnship_user_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # The script may import its sibling files, as it would when run with `python file.py`.
    sys.path.insert(0, str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise error(f"{what}: running '{path}' failed: {type(exc).__name__}: {exc}") from exc
    finally:
        try:
            sys.path.remove(str(resolved.parent))
        except ValueError:  # the script removed it itself
            pass
    return module


def _import_module(name: str, *, what: str, error: type[NnshipError]) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise error(
            f"{what}: cannot import module '{name}': {type(exc).__name__}: {exc}. "
            "Is the package installed, or the file on PYTHONPATH?"
        ) from exc
    except Exception as exc:  # the module imported but crashed while running its top level
        raise error(
            f"{what}: importing module '{name}' failed: {type(exc).__name__}: {exc}"
        ) from exc


def resolve_object(
    text: str, *, what: str, error: type[NnshipError], base_dir: Path | None = None
) -> tuple[Any, Path | None]:
    """Import the object named by `text` (`pkg.mod:name` or `file.py:name`).

    Returns the object and the file it was defined in (for fingerprints), when known.
    A relative `file.py` is resolved against `base_dir` (defaults to the working directory).
    Raises `error` (an `NnshipError` subclass) naming `what`, the module and the attribute.
    """
    target, attr = split_object_spec(text, what=what, error=error)
    what = f"{what} '{text}'"
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        module = _import_file(path, what=what, error=error)
    else:
        module = _import_module(target, what=what, error=error)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            available = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
            raise error(
                f"{what}: '{target}' has no attribute '{attr}'"
                + (f" (it defines: {', '.join(available)})" if available else "")
            )
        obj = getattr(obj, part)
    source_file = getattr(module, "__file__", None)
    return obj, Path(source_file) if source_file else None
