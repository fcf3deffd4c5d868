"""Where a tune study lives: Optuna's storage interface, embedded by default.

- No URL: an SQLite file `study.db` in the tune folder (Optuna's `RDBStorage`), nothing to run.
- A URL (`postgresql://user@host/db`, `mysql://...`, `sqlite:///path`): `RDBStorage` with
  heartbeats, so a worker that dies mid-trial is noticed by the others after the grace period;
  its trial is failed and re-queued with the same parameters (Optuna's
  `RetryHeartbeatStaleTrialCallback`, the documented multi-node mode).

The tune engine talks to the study through Optuna's public API (ask, tell, user attributes,
`optuna.storages.fail_stale_trials`), so the same code runs on one laptop or on many workers
of one study, whatever the database. Beside Optuna's tables nnship keeps one of its own in the
same database, the ask lock's (`nnship.tune.ask_lock`, opened with `open_ask_lock`); and
`TrialHeartbeat` records the heartbeats of an ask-and-tell trial (see there why nnship does).

PostgreSQL specifics: a URL without a driver (`postgresql://`) gets the installed one (SQLAlchemy
2.1 would otherwise insist on psycopg 3); connecting times out after `CONNECT_TIMEOUT_S`; the
tables (Optuna's and the ask lock's) are created under an advisory lock, because `CREATE TABLE
IF NOT EXISTS` is not atomic in PostgreSQL and workers started together on an empty database
would otherwise race (one dies on `duplicate key ... pg_type_typname_nsp_index`). Every failure
is one `StorageError` line naming the host, never the password.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from nnship.core.errors import NnshipError
from nnship.tune.ask_lock import ASK_LOCK_LEASE_S, AskLock, ask_lock_table

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "DEFAULT_DB_NAME",
    "DEFAULT_HEARTBEAT_S",
    "GRACE_ENV",
    "HEARTBEAT_ENV",
    "StorageError",
    "TrialHeartbeat",
    "default_storage_url",
    "heartbeat_interval",
    "open_ask_lock",
    "open_storage",
    "redact_url",
]

DEFAULT_DB_NAME = "study.db"
DEFAULT_HEARTBEAT_S = 60
"""Seconds between heartbeats of a running trial on a server storage (grace: 2 intervals)."""

HEARTBEAT_ENV = "NNSHIP_TUNE_HEARTBEAT_S"
GRACE_ENV = "NNSHIP_TUNE_GRACE_S"
"""Environment variables that set the heartbeat interval and grace period (whole seconds) of a
server storage when the caller passes none: every worker of a cluster job gets the same
settings without a new flag (tests use a 2 s heartbeat)."""


OPEN_ATTEMPTS = 3
OPEN_RETRY_S = 0.5
"""Attempts (and the back-off step, seconds) to open a non-PostgreSQL storage (see `_open_rdb`)."""

CONNECT_TIMEOUT_S = 10
"""Seconds a database server may take to accept a connection before the run gives up."""

_SCHEMA_LOCK_KEY = 0x6E6E73686970  # "nnship": the advisory lock serialising table creation

_DRIVERS = {
    # backend: [(module, SQLAlchemy driver name, pip package)], preferred first
    "postgresql": [("psycopg2", "psycopg2", "psycopg2-binary"), ("psycopg", "psycopg", "psycopg")],
    "mysql": [("pymysql", "pymysql", "pymysql"), ("MySQLdb", "mysqldb", "mysqlclient")],
}


class StorageError(NnshipError):
    """The study storage cannot be opened or reached (exit 2)."""


def default_storage_url(tune_dir: Path | str) -> str:
    """The embedded storage of a tune folder: `sqlite:///<tune_dir>/study.db`."""
    return f"sqlite:///{(Path(tune_dir).absolute() / DEFAULT_DB_NAME).as_posix()}"


def redact_url(url: str) -> str:
    """`url` without its password (`postgresql://user:***@host/db` -> `postgresql://user@host/db`),
    for `tune.json`, logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_storage(
    url: str | None,
    tune_dir: Path | str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> Any:
    """The study storage for `url` (None: the tune folder's embedded SQLite file).

    `heartbeat_interval` (seconds) turns on heartbeats and stale-trial retry; it defaults to
    `DEFAULT_HEARTBEAT_S` for a URL and to off for the embedded file (one machine: a killed run
    is resumed with `--resume`, which fails and re-queues its interrupted trial).
    `grace_period` (seconds without a heartbeat before a running trial counts as dead) defaults
    to two intervals. For a URL, `$NNSHIP_TUNE_HEARTBEAT_S` / `$NNSHIP_TUNE_GRACE_S` set
    either when not passed. Raises `StorageError` naming the server (password left out) when the
    storage cannot be opened or reached, or its driver is missing.
    """
    import optuna

    embedded = url is None
    if embedded:
        Path(tune_dir).mkdir(parents=True, exist_ok=True)
        url = default_storage_url(tune_dir)
    elif heartbeat_interval is None:
        heartbeat_interval = _env_seconds(HEARTBEAT_ENV) or DEFAULT_HEARTBEAT_S
    if grace_period is None and not embedded:
        grace_period = _env_seconds(GRACE_ENV)
    given, url = url, _with_driver(url)
    engine_kwargs = _engine_kwargs(url)
    # Heartbeats and stale-trial retry are Optuna's documented multi-node mode, marked
    # experimental since 2.8; the warnings say nothing a tune user can act on.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period or 2 * heartbeat_interval,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(),
        }
    with _opening(given):
        return _create_schema(
            url,
            engine_kwargs,
            lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs),
        )


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine settings of a study database (`url` with its driver)."""
    if url.startswith("sqlite"):
        # several processes (of one machine, or hosts sharing the disk) share the file: each
        # write waits up to 60 s for the file's lock
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}


@contextlib.contextmanager
def _opening(given: str) -> Iterator[None]:
    """Any failure to open or reach the storage `given` (the URL as the user wrote it) as one
    `StorageError` line."""
    try:
        yield
    except StorageError:
        raise
    except ImportError as exc:  # a missing database driver (psycopg2, ...)
        raise StorageError(
            f"Cannot open tune storage '{redact_url(given)}': its database driver is missing "
            f"({exc.__cause__ or exc}); pip install {_pip_hint(given)}"
        ) from exc
    except Exception as exc:  # sqlalchemy's OperationalError and friends: say where, no traceback
        raise _storage_error(given, exc) from exc


def _create_schema(url: str, engine_kwargs: dict[str, Any], create: Callable[[], T]) -> T:
    """`create()` (which creates tables when they are missing), safe against other workers
    doing the same at the same moment. PostgreSQL is serialised by `_schema_lock`; elsewhere
    (several processes on one SQLite file) processes started together race to create the
    schema (one fails on a unique key or an existing table) and the schema is there a moment
    later: retry."""
    attempts = 1 if _backend(url) == "postgresql" else OPEN_ATTEMPTS
    with _schema_lock(url, engine_kwargs):
        for attempt in range(attempts):
            try:
                return create()
            except ImportError:
                raise
            except Exception as exc:  # sqlalchemy's IntegrityError / OperationalError
                if attempt + 1 == attempts:
                    raise
                log.debug("opening %s failed (attempt %d): %s", redact_url(url), attempt + 1, exc)
                time.sleep(OPEN_RETRY_S * (attempt + 1))
    raise AssertionError("unreachable")


def _env_seconds(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise StorageError(f"${name} must be a whole number of seconds > 0, got '{text}'")
    return int(text)


def _backend(url: str) -> str:
    """`postgresql` for `postgresql+psycopg2://...`, `postgres://...`."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if scheme == "postgres" else scheme


def _with_driver(url: str) -> str:
    """`url` with an installed driver named when it names none: `postgresql://` means psycopg
    (version 3) to SQLAlchemy 2.1 but psycopg2 to 2.0, and many installs have only one of them.
    `postgres://` (Heroku's spelling, refused by SQLAlchemy) is read as `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "+" in scheme:
        return url
    backend = _backend(url)
    for module, driver, _ in _DRIVERS.get(backend, []):
        if importlib.util.find_spec(module) is not None:
            return f"{backend}+{driver}://{rest}"
    return f"{backend}://{rest}" if backend != scheme.lower() else url


def _pip_hint(url: str) -> str:
    drivers = _DRIVERS.get(_backend(url))
    if not drivers:
        return "the database's SQLAlchemy driver"
    first, *others = (pip for _, _, pip in drivers)
    return first + "".join(f" (or {other})" for other in others)


def _server(url: str) -> str:
    """Where `url` points, for messages: `host db.example:5432`, `unix socket /run/pg`."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not parseable: the message shows the redacted URL anyway
        return "the server"
    host = parsed.host or parsed.query.get("host")
    if isinstance(host, tuple):
        host = host[0] if host else None
    if not host:
        return "the local server (default socket)"
    if str(host).startswith("/"):
        return f"unix socket {host}"
    return f"host {host}" + (f":{parsed.port}" if parsed.port else "")


def _storage_error(url: str, exc: Exception) -> StorageError:
    """One line: the server, the redacted URL and the database's own first line of reason."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = detail[0].strip() if detail else type(exc).__name__
    password = _password(url)
    if password:
        reason = reason.replace(password, "***")
    if type(exc).__name__ in ("ArgumentError", "NoSuchModuleError"):  # sqlalchemy.exc's
        return StorageError(
            f"'{redact_url(url)}' is not a storage URL ({reason}); expected "
            "postgresql://user@host/database, mysql://user@host/database or sqlite:///path"
        )
    if url.startswith("sqlite"):
        return StorageError(f"Cannot open tune storage '{redact_url(url)}': {reason}")
    return StorageError(
        f"Cannot reach the tune storage on {_server(url)} ('{redact_url(url)}'): {reason}"
    )


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


@contextlib.contextmanager
def _schema_lock(url: str, engine_kwargs: dict[str, Any]) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock while Optuna creates its tables (no-op for other
    databases). Also the reachability check: connecting is the first thing it does."""
    if _backend(url) != "postgresql":
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _SCHEMA_LOCK_KEY}
                )
    finally:
        engine.dispose()


def heartbeat_interval(storage: Any) -> int | None:
    """Seconds between a running trial's heartbeats on `storage` (an Optuna storage), None
    where there are none: an `RDBStorage` opened without an interval (the embedded file: one
    machine, a killed run is resumed with `--resume`) and storages without heartbeats
    (in-memory, journal)."""
    import optuna

    if not isinstance(storage, optuna.storages.RDBStorage):
        return None
    return storage.get_heartbeat_interval() or None


class TrialHeartbeat:
    """The heartbeat of trial `trial_number` of study `study_name` while it runs: one at once
    with `beat()`, then one every interval on a thread while the `with` block runs. A no-op
    where `storage` has no heartbeat.

    Why nnship runs the thread: Optuna records heartbeats only inside `Study.optimize`, with a
    thread from a private module keyed by the trial's private id; it has no public heartbeat
    for ask-and-tell trials (optuna/optuna#3293 was closed without one, and `Study.ask` warns
    that heartbeats are "supposed to be used with Study.optimize"). The least private
    documented path is the one taken here: `RDBStorage.record_heartbeat(trial_id)` and
    `RDBStorage.get_heartbeat_interval()`, listed in RDBStorage's API reference, called on the
    storage nnship constructed itself (`open_storage`; never the study's private handle on it),
    with the trial's id looked up through the documented `BaseStorage` interface
    (`get_study_id_from_name`, `get_trial_id_from_study_id_trial_number`). Building each trial
    inside `study.optimize(n_trials=1)` would get Optuna's own thread, but would hand the loop
    (failure handling, the record-before-tell order, the ask lock) to an objective callback.
    """

    def __init__(self, storage: Any, study_name: str, trial_number: int) -> None:
        self.storage = storage
        self.interval = heartbeat_interval(storage)
        self.trial_id: int | None = None
        if self.interval:
            study_id = storage.get_study_id_from_name(study_name)
            self.trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Record one heartbeat now."""
        if self.trial_id is not None:
            self.storage.record_heartbeat(self.trial_id)

    def _beat_until_stopped(self) -> None:
        assert self.interval is not None
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # a hiccup of the server must not kill the trial
                log.warning("heartbeat of trial id %s failed: %s", self.trial_id, exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> TrialHeartbeat:
        if self.trial_id is not None:
            self._thread = threading.Thread(
                target=self._beat_until_stopped, daemon=True, name="tune-heartbeat"
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def open_ask_lock(
    url: str | None, tune_dir: Path | str, study_name: str, *, lease_s: float = ASK_LOCK_LEASE_S
) -> AskLock:
    """The `AskLock` of study `study_name` in the storage `url` (None: the tune folder's
    embedded file), its table created when missing. Raises `StorageError` as `open_storage`
    does."""
    import sqlalchemy

    given = url or default_storage_url(tune_dir)
    url = _with_driver(given)
    engine_kwargs = _engine_kwargs(url)
    table = ask_lock_table()
    with _opening(given):
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
        try:
            _create_schema(url, engine_kwargs, lambda: table.create(engine, checkfirst=True))
        except BaseException:
            engine.dispose()
            raise
    return AskLock(engine, table, study_name, lease_s)
