"""Fixtures of the tune tests: a real PostgreSQL server for the scale-out tests.

`pgserver` (a dev dependency) ships PostgreSQL 16 in a wheel and starts it as root too (it runs
the server as its own system user, where a plain `postgres` refuses root). The server listens on
a unix socket only, in a temporary folder, so nothing on the network is touched; it is started
once per test process and stopped (and its data deleted) at the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[object]:
    """A running `pgserver.PostgresServer` (stopped after the session)."""
    import pgserver

    # a short path: the unix socket's path must fit in 107 bytes
    data = Path(tmp_path_factory.mktemp("pg"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A `postgresql://` URL (unix socket, no password) of a fresh, empty database per test, in
    the form a user writes: no `+driver`, so nnship picks the installed driver itself."""
    name = f"nnship_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name};")
    return postgres_server.get_uri(name)
