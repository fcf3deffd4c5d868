"""Fixtures of the tune tests: a real PostgreSQL server for the scale-out tests.

`pgserver` (a dev dependency) ships PostgreSQL 16 in a wheel and starts it as root too (it runs
the server as its own system user, where a plain `postgres` refuses root). The server listens on
a unix socket only, in a temporary folder, so nothing on the network is touched; it is started
once per test process and stopped (and its data deleted) at the end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


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
