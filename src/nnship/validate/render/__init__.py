"""Renderings of a `Report` (the JSON is the source of truth):

- `cells`: the shared cell formatters (numbers, drift, latency, gates) every view uses
- `markdown`: `report.md`, and `save_with_markdown` (JSON + Markdown beside it)
- `terminal`: the rich tables `nnship validate`/`build`/`bench` print
- `html`: the self-contained HTML report; `charts`: its inline SVG charts
"""
