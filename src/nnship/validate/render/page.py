"""The HTML kit every nnship page is built with (the report, the tuner's page): one stylesheet,
tables and figures. Pages are self-contained: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from html import escape

PAGE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;
background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 8px}h2{font-size:18px;margin:32px 0 10px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-size:15px;
vertical-align:middle}.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0;color:#444}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 7px;text-align:right;white-space:nowrap}
th{background:#f0f2f5}.text{text-align:left}
td.pass{color:#2e7d32;font-weight:600}td.fail{color:#c62828;font-weight:700}
figure{margin:8px 0 18px}figcaption{color:#555;font-size:12.5px;margin-top:2px}
svg.plot{width:100%;height:auto;display:block;font-size:12px}
svg .axis{stroke:#444}svg .grid{stroke:#e6e6e6}svg .tick{fill:#555;font-size:11px}
svg .axis-title{fill:#333;font-size:12px}svg .label{fill:#222;font-size:12px}
svg .value{fill:#333;font-size:11px}svg .legend{fill:#555;font-size:11px}
svg .box{fill-opacity:.25;stroke-width:1.5}svg .median{stroke:#111;stroke-width:2}
svg .whisker{stroke-width:1.5}svg .dot{fill-opacity:.45}svg .marker{stroke:#111;stroke-width:2}
.empty{color:#777;font-style:italic}code{font-size:12.5px}
"""
"""The stylesheet of every page (inline in `<style>`)."""


def html_table(
    header: tuple[str, ...] | list[str],
    rows: list[list[str]],
    classes: list[list[str]] | None = None,
    text_cols: tuple[int, ...] = (0,),
) -> str:
    """An HTML table; `text_cols` are left-aligned, `classes[r][c]` adds a cell class."""

    def attr(c: int, extra: str = "") -> str:
        names = " ".join(n for n in ("text" if c in text_cols else "", extra) if n)
        return f' class="{names}"' if names else ""

    head = "".join(f"<th{attr(c)}>{escape(h)}</th>" for c, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f"<td{attr(c, classes[r][c] if classes else '')}>{escape(cell)}</td>"
            for c, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_figure(svg: str, caption: str) -> str:
    """An SVG chart with its caption."""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
