"""Generates docs/api.md from the API's signatures and docstrings, so the page cannot drift
(tests/test_api_docs.py compares it). Regenerate with `python -m nnship.api.docs > docs/api.md`."""

from __future__ import annotations

import inspect
import textwrap

HEADER = """# Python API

`nnship.api` has one function per command line verb; the CLI parses its arguments, calls the
function and renders what it returns. Every result has `to_dict()` (JSON). Importing
`nnship.api` imports neither torch nor a backend runtime.

```python
from nnship import api

result = api.build("examples/demo/recipe.toml")
print(result.exit_code, result.report_path)
```

This page is generated from the code (`python -m nnship.api.docs > docs/api.md`); a test
fails when it is out of date.
"""


def _signature(name: str, func: object) -> str:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    params = []
    star_added = False
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star_added:
            params.append("*")
            star_added = True
        text = p.name
        if p.annotation is not inspect.Parameter.empty:
            text += f": {p.annotation}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {p.default!r}"
        params.append(text)
    ret = sig.return_annotation
    body = ",\n    ".join(params)
    return f"def {name}(\n    {body},\n) -> {ret}" if params else f"def {name}() -> {ret}"


def api_markdown() -> str:
    """The whole docs/api.md text."""
    from nnship import api

    parts = [HEADER]
    for name in sorted(api.COMMANDS):
        func = api.COMMANDS[name]
        doc = textwrap.dedent(inspect.getdoc(func) or "").strip()
        parts.append(f"## `api.{name}`\n\n```python\n{_signature(name, func)}\n```\n\n{doc}\n")
    for func in sorted(api.SUBCOMMANDS.values(), key=lambda f: f.__name__):
        doc = textwrap.dedent(inspect.getdoc(func) or "").strip()
        name = func.__name__
        parts.append(f"## `api.{name}`\n\n```python\n{_signature(name, func)}\n```\n\n{doc}\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(api_markdown(), end="")
