"""Tune tests: the trained 8x8 digits CNN, quantize-only or tiny prune spaces (a trial takes
about a second once the stage cache is warm), and a real PostgreSQL server for the scale-out
tests.

`pgserver` (a dev dependency) ships PostgreSQL 16 in a wheel and starts it as root too (it runs
the server as its own system user, where a plain `postgres` refuses root). The server listens on
a unix socket only, in a temporary folder, so nothing on the network is touched; it is started
once per test process and stopped (and its data deleted) at the end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tune_recipe_text(tiny_recipe_text) -> str:
    """The tiny recipe with latency on (few runs), a fast INT8 quantizer and `[tune]` header
    keys left to the test: append `[tune]` / `[tune.space]` text to it."""
    text = tiny_recipe_text.replace("enabled = false", "enabled = true")
    return text + textwrap.dedent(
        """
        [quantize]
        precisions = ["int8"]
        method = "minmax"
        equalization = "off"
        smoothing = "off"
        bias_correction = "off"
        """
    )


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A stage cache shared by the tests that do not count stage runs (warm after the first)."""
    return tmp_path_factory.mktemp("tune-cache")


@pytest.fixture
def tune_recipe(tune_recipe_text, write_recipe):
    """`tune_recipe(tune_section, name="recipe.toml")` writes the tiny recipe plus `tune_section`."""

    def write(tune_section: str, name: str = "recipe.toml"):
        return write_recipe(tune_recipe_text + textwrap.dedent(tune_section), name)

    return write


GRID_2X2 = """
[tune]
sampler = "grid"
constraints = { max_top1_drop = 5.0 }

[tune.space]
"quantize.method" = ["minmax", "percentile"]
"quantize.per_channel" = [true, false]
"""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A running `pgserver.PostgresServer` (stopped, its data deleted, after the session).

    Its data folder is NOT under pytest's temporary root: as root, the server runs as the
    system user `pgserver`, which must traverse the folder's parents, and every pytest start
    (another test process, an xdist worker) resets `/tmp/pytest-of-<user>` to mode 0700, which
    made initdb fail with "Permission denied" now and then. A short path also keeps the unix
    socket's path under its 107-byte limit."""
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="nnship-pg-"))
    server = pgserver.get_server(data / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A `postgresql://` URL (unix socket, no password) of a fresh, empty database per test, in
    the form a user writes: no `+driver`, so nnship picks the installed driver itself."""
    name = f"nnship_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name};")
    return postgres_server.get_uri(name)
