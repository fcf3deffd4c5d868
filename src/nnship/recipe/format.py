"""Recipe text in and out: pydantic errors as one line per problem naming the file, section and
key (with "did you mean" suggestions), and TOML out for `--print-recipe` (tomli-w)."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["dumps_toml", "format_validation_error"]


def format_validation_error(exc: ValidationError, name: str, root: type[BaseModel]) -> str:
    """One line per problem: `recipe.toml: [validate.gates] max_top1_dorp: unknown key (did you
    mean max_top1_drop?)`. Union branches that failed for the same key are reported once, and a
    "wrong type" from one branch is dropped when another branch got further (e.g. a table given
    for `str | InputTable`)."""
    walked = [(err, *_walk_loc(root, err["loc"])) for err in exc.errors()]
    lines: list[str] = []
    seen: set[str] = set()
    for err, keys, model_at_parent, is_section in walked:
        if err["type"].endswith("_type") and any(
            len(other) > len(keys) and other[: len(keys)] == keys for _, other, _, _ in walked
        ):
            continue
        where = _display(keys, is_section)
        if where in seen:
            continue
        seen.add(where)
        lines.append(f"{name}: {where}: {_describe(err, keys, model_at_parent)}")
    return "\n".join(lines[:10]) or f"{name}: invalid recipe"


def _describe(err: Any, keys: list[str | int], model_at_parent: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
        if model_at_parent is not None and keys:
            known = _field_names(model_at_parent)
            close = difflib.get_close_matches(str(keys[-1]), known, n=1, cutoff=0.6)
            if close:
                return msg + f" (did you mean {close[0]}?)"
            return msg + f" (known keys: {', '.join(sorted(known))})"
        return msg
    if kind == "missing":
        return "missing required key"
    text = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if isinstance(got, dict | list):
        return text
    return f"{text} (got {repr(got)[:60]})"


def _display(keys: list[str | int], is_section: bool = False) -> str:
    """(validate, gates, max_top1_dorp) -> '[validate.gates] max_top1_dorp'; a whole section
    (a table-valued key) -> '[validate.gates]'."""
    if not keys:
        return "(top level)"
    if is_section and all(isinstance(k, str) for k in keys):
        return "[" + ".".join(str(k) for k in keys) + "]"
    *section, last = keys
    head = ""
    for part in section:
        if isinstance(part, int):
            head += f"[{part}]"
        else:
            head += ("." if head else "") + part
    tail = f"[{last}]" if isinstance(last, int) else str(last)
    if isinstance(last, int) and section:
        # a list element: show it on the key, e.g. "[model] inputs[0]"
        *section2, key = section
        head2 = ".".join(str(p) for p in section2 if not isinstance(p, int))
        return (f"[{head2}] " if head2 else "") + f"{key}{tail}"
    return (f"[{head}] " if head else "") + tail


def _field_names(model: type[BaseModel]) -> list[str]:
    names = []
    for field_name, info in model.model_fields.items():
        names.append(info.alias or field_name)
    return names


def _models_in(annotation: Any) -> list[Any]:
    """Flatten Optional/Union/Annotated into their member types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_models_in(arg))
        return out
    return [annotation]


def _walk_loc(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str | int], Any, bool]:
    """Follow pydantic's error location through the model tree. Returns the user-facing keys
    (union-branch tags dropped, aliases used), the model class holding the last key, and whether
    the last key is a section (a table-valued field)."""
    keys: list[str | int] = []
    current: list[Any] = [root]
    parent_model: Any = None
    for part in loc:
        models = [m for c in current for m in _models_in(c)]
        if isinstance(part, int):
            keys.append(part)
            nxt: list[Any] = []
            for m in models:
                if typing.get_origin(m) in (list, tuple, set):
                    nxt.extend(typing.get_args(m)[:1])
            current = nxt or current
            continue
        matched = False
        for m in models:
            if isinstance(m, type) and issubclass(m, BaseModel):
                for field_name, info in m.model_fields.items():
                    if part in (field_name, info.alias):
                        keys.append(info.alias or field_name)
                        parent_model = m
                        current = [info.annotation]
                        matched = True
                        break
            if matched:
                break
        if matched:
            continue
        # a union tag (class name such as 'InputTable', 'str'): narrow to that member
        named = [m for m in models if getattr(m, "__name__", str(m)) == part]
        if named:
            current = named
            continue
        if part.startswith(("function-", "list[", "dict[", "tagged-union", "union[")):
            continue
        # an unknown key: it is the last element; its parent is the current model
        keys.append(part)
        parent_model = next(
            (m for m in models if isinstance(m, type) and issubclass(m, BaseModel)), None
        )
        current = []
    is_section = any(
        isinstance(m, type) and issubclass(m, BaseModel) for c in current for m in _models_in(c)
    )
    return keys, parent_model, is_section


def dumps_toml(data: dict[str, Any]) -> str:
    """JSON-like data as TOML, written by tomli-w; TOML has no null, so None values (and None
    items of lists) are left out."""
    import tomli_w

    return tomli_w.dumps(_drop_none(data))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value if v is not None]
    return value
