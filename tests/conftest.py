"""Shared fixtures: real data, tiny trained models, recipe files and the real CLI in a subprocess.

Everything is small (8x8 digits, a width-8 CNN trained for a few epochs, 128-sample splits) so
tests stay fast on two shared cores; session-scoped fixtures are built once per test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def digits_splits():
    """(train, test) `nnship.datasets.Split`s of the real 8x8 digits (N x 1 x 8 x 8, input `x`)."""
    from nnship.datasets import digits_images

    return digits_images(seed=0)


@pytest.fixture(scope="session")
def trained_digits_cnn(tmp_path_factory, digits_splits) -> Path:
    """A state dict of `nnship.models.digits_cnn(width=8)` trained 3 epochs on the digits
    (about 90% test accuracy), saved as `digits_cnn.pt`."""
    import torch

    from nnship.models import digits_cnn
    from nnship.models.train import train_classifier

    train, _ = digits_splits
    torch.manual_seed(0)  # the initial weights too: torch seeds itself randomly per process
    model = train_classifier(digits_cnn(width=8), train, epochs=3, seed=0)
    path = tmp_path_factory.mktemp("models") / "digits_cnn.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory, digits_splits) -> dict[str, Path]:
    """`calibration.npz` (128 training digits) and `evaluation.npz` (128 test digits), each with
    `x` and `labels`."""
    train, test = digits_splits
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    for name, split in (("calibration", train.take(128)), ("evaluation", test.take(128))):
        paths[name] = folder / f"{name}.npz"
        np.savez(paths[name], x=split.inputs["x"], labels=split.labels)
    return paths


@pytest.fixture
def write_recipe(tmp_path) -> Callable[..., Path]:
    """`write_recipe(text, name="recipe.toml")` writes dedented TOML into `tmp_path`."""

    def write(text: str, name: str = "recipe.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_recipe_text(trained_digits_cnn, digits_npz) -> str:
    """A complete small recipe: the trained digits CNN, real calibration/evaluation data,
    ONNX Runtime only, latency off (set `validate.latency.enabled=true` to time). Append
    sections to it as needed."""
    from tests.recipes import digits_recipe

    return digits_recipe(
        trained_digits_cnn,
        digits_npz,
        sections="""
        [validate.latency]
        enabled = false
        runs = 20
        min_warmup_runs = 2
        max_warmup_runs = 20
        """,
    )


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point `$NNSHIP_CACHE_DIR` at an empty temporary folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("NNSHIP_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """`run_cli(*args, cwd=None, env=None)` runs the real `nnship` command line in a subprocess
    (`python -m nnship.cli.main`) and returns the completed process (text stdout/stderr)."""

    def run(
        *args: str,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "nnship.cli.main", *map(str, args)],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# Run inside the page after load (the report itself has no script): the laid-out geometry of
# every chart, written into the DOM so `--dump-dom` returns it.
_GEOMETRY_SCRIPT = """<script>
window.addEventListener("load", () => {
  const round = (r) => ({x: r.x, y: r.y, width: r.width, height: r.height});
  const charts = [...document.querySelectorAll("svg.plot")].map((svg) => {
    const vb = svg.viewBox.baseVal;
    const shapes = [...svg.querySelectorAll("circle, rect, line, text")].map((el) => {
      const box = el.getBBox();
      return {tag: el.tagName, cls: el.getAttribute("class") || "", box: round(box),
              transformed: el.hasAttribute("transform"),
              text: el.tagName === "text" ? el.textContent : null,
              textLength: el.tagName === "text" ? el.getComputedTextLength() : null};
    });
    return {label: svg.getAttribute("aria-label"), rect: round(svg.getBoundingClientRect()),
            viewBox: {width: vb.width, height: vb.height}, shapes};
  });
  const out = document.createElement("pre");
  out.id = "nnship-geometry";
  out.textContent = JSON.stringify({charts, width: document.body.scrollWidth,
                                    viewport: window.innerWidth});
  document.body.appendChild(out);
});
</script>"""


def find_browser() -> str | None:
    """A Chromium-family browser: `$NNSHIP_BROWSER`, else the first of `BROWSERS` on PATH
    (`.ci/run` installs Debian's `chromium` where none is)."""
    import shutil

    named = os.environ.get("NNSHIP_BROWSER")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture
def browser_render(tmp_path) -> Callable[[Path], tuple[dict, Path]]:
    """`browser_render(html) -> (geometry, screenshot.png)`: loads `html` in headless Chromium,
    returns the laid-out geometry of its SVG charts and a full-page screenshot. Skips only
    where no browser can be found (see `find_browser`)."""
    import json
    import re

    browser = find_browser()
    if browser is None:
        pytest.skip(
            "no Chromium-family browser found (install Debian's chromium, as .ci/run does, or "
            "set NNSHIP_BROWSER)"
        )

    def render(html: Path) -> tuple[dict, Path]:
        probe = tmp_path / f"{html.stem}.probe.html"
        probe.write_text(
            html.read_text(encoding="utf-8").replace("</body>", _GEOMETRY_SCRIPT + "</body>"),
            encoding="utf-8",
        )
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'browser-profile'}",
            "--window-size=1200,2600",
            "--virtual-time-budget=5000",
        ]
        png = tmp_path / f"{html.stem}.png"
        # the screenshot is of the report exactly as shipped (no probe script)
        subprocess.run(
            [*args, f"--screenshot={png}", html.resolve().as_uri()],
            capture_output=True,
            timeout=180,
            check=True,
        )
        dom = subprocess.run(
            [*args, "--dump-dom", probe.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        ).stdout
        found = re.search(r'<pre id="nnship-geometry">(.*?)</pre>', dom, re.S)
        assert found, f"the page's load handler did not run; DOM starts {dom[:300]!r}"
        import html as html_lib

        return json.loads(html_lib.unescape(found.group(1))), png

    return render
