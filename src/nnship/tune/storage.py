"""Where a tune study lives: Optuna's storage interface, embedded by default.

- No URL: an SQLite file `study.db` in the tune folder (Optuna's `RDBStorage`), nothing to run.
- A URL (`postgresql://user@host/db`, `mysql://...`, `sqlite:///path`): `RDBStorage` with
  heartbeats, so a worker that dies mid-trial is noticed by the others after the grace period;
  its trial is failed and re-queued with the same parameters (Optuna's
  `RetryHeartbeatStaleTrialCallback`, the documented multi-node mode).

The tune engine only talks to `optuna.storages.BaseStorage`, so the same code runs on one
laptop or on many workers of one study.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nnship.errors import NnshipError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DB_NAME",
    "DEFAULT_HEARTBEAT_S",
    "HeartbeatThread",
    "StorageError",
    "default_storage_url",
    "open_storage",
    "redact_url",
]

DEFAULT_DB_NAME = "study.db"
DEFAULT_HEARTBEAT_S = 60
"""Seconds between heartbeats of a running trial on a server storage (grace: 2 intervals)."""


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
) -> Any:
    """The study storage for `url` (None: the tune folder's embedded SQLite file).

    `heartbeat_interval` (seconds) turns on heartbeats and stale-trial retry; it defaults to
    `DEFAULT_HEARTBEAT_S` for a URL and to off for the embedded file (one machine: a killed run
    is resumed with `--resume`, which fails and re-queues its interrupted trial). Raises
    `StorageError` naming the storage (password left out) when it cannot be opened.
    """
    import optuna

    embedded = url is None
    if embedded:
        Path(tune_dir).mkdir(parents=True, exist_ok=True)
        url = default_storage_url(tune_dir)
    elif heartbeat_interval is None:
        heartbeat_interval = DEFAULT_HEARTBEAT_S
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several processes of one machine may share the file: wait for its lock
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": 2 * heartbeat_interval,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(),
        }
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except ImportError as exc:  # a missing database driver (psycopg2, ...)
        raise StorageError(
            f"Cannot open tune storage '{redact_url(url)}': {exc}; install the database driver"
        ) from exc
    except Exception as exc:  # sqlalchemy's OperationalError and friends: say where, no traceback
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StorageError(
            f"Cannot open tune storage '{redact_url(url)}': {detail[0] if detail else exc}"
        ) from exc


class HeartbeatThread:
    """Records a running trial's heartbeat every interval while a trial runs (Optuna does this
    itself only inside `study.optimize`; the tune engine uses ask-and-tell). A no-op when the
    storage has no heartbeat."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        from optuna.storages._heartbeat import is_heartbeat_enabled

        self._storage = storage
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if is_heartbeat_enabled(storage):
            self._interval = float(storage.get_heartbeat_interval())
            self._thread = threading.Thread(target=self._beat, daemon=True, name="tune-heartbeat")

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception as exc:  # a hiccup of the server must not kill the trial
                log.warning("heartbeat of trial id %s failed: %s", self._trial_id, exc)
            self._stop.wait(self._interval)

    def __enter__(self) -> HeartbeatThread:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
