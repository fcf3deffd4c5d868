"""Renderings of a `Report`: shared cells, Markdown, terminal, HTML and its charts."""
