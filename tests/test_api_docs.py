"""docs/api.md is generated from the API's signatures and docstrings and must be current."""

from __future__ import annotations

from pathlib import Path

from nnship.api.docs import api_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_md_matches_the_signatures():
    assert DOC.read_text(encoding="utf-8") == api_markdown(), (
        "docs/api.md is out of date: python -m nnship.api.docs > docs/api.md"
    )


def test_api_md_has_one_section_per_function():
    from nnship import api

    text = api_markdown()
    for func in api.COMMANDS.values():
        assert text.count(f"## `api.{func.__name__}`") == 1
