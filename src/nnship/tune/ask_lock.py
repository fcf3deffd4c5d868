"""The ask lock: one worker at a time decides "is work left? then ask for a trial" in a study.

`open_ask_lock` (in `nnship.tune.storage`) opens it on the study's database; see `AskLock` for
the protocol.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from nnship.tune.trial import worker_gone, worker_name

log = logging.getLogger(__name__)

__all__ = ["ASK_LOCK_LEASE_S", "ASK_LOCK_TABLE", "AskLock", "ask_lock_table"]

ASK_LOCK_TABLE = "nnship_ask_lock"
ASK_LOCK_LEASE_S = 60.0
"""Seconds one holder of the ask lock may keep a waiter out before the waiter takes the lock
over (the holder is presumed dead or hung: what the lock guards takes milliseconds to seconds)."""

_POLL_S = (0.02, 0.5)  # a waiter's first and longest pause between tries (doubling), seconds


class AskLock:
    """Serialises "is work left? then ask for a trial" across every worker of one study, on
    any database Optuna's `RDBStorage` supports (SQLite, PostgreSQL, MySQL, ...), workers on
    one machine or many. `with lock:` holds it.

    Without it two workers that check at once both ask: a study ends with one trial more than
    its budget, and Optuna's GridSampler (which picks among the points no trial holds yet)
    hands both the same point.

    Protocol: the table `nnship_ask_lock` in the study's own database (created by
    `open_ask_lock`) has at most one row per study, `(study_name, token, holder)`, the study
    name its primary key. Taking the lock is inserting the study's row, with a fresh random
    token and `host-pid` as holder, in a transaction of its own: the primary key lets exactly
    one concurrent insert commit; the others fail (IntegrityError), wait (20 ms, doubling up to
    0.5 s) and insert again. Releasing it is deleting the row whose token is ours. No
    transaction stays open while the lock is held, so Optuna's own writes meanwhile (its ask,
    stale-trial reaping) go through, also on SQLite, which lets one writer in at a time.

    A holder that died holding it: a waiter deletes the row (by its token, so only that lease
    goes) at once when the holder ran on this host and its process is gone, else when the
    same token has kept it out for `lease_s` seconds of its own clock (no clock is compared
    across hosts), and logs a warning. A live holder that overran the lease finds its row gone
    when it releases, and logs a warning too.
    """

    def __init__(
        self, engine: Any, table: Any, study_name: str, lease_s: float = ASK_LOCK_LEASE_S
    ) -> None:
        self.engine = engine
        self.table = table
        self.study_name = study_name
        self.lease_s = lease_s
        self.holder = worker_name()
        self._token: str | None = None

    def __enter__(self) -> AskLock:
        token = uuid.uuid4().hex
        seen, since, pause = None, time.monotonic(), _POLL_S[0]
        while not self._insert(token):
            row = self._row()
            if row is None:  # released between our insert and our look: try again
                continue
            if row.token != seen:
                seen, since = row.token, time.monotonic()
            if worker_gone(row.holder):
                self._take_over(row, "its process is gone")
            elif time.monotonic() - since >= self.lease_s:
                self._take_over(row, f"it kept the lock for over {self.lease_s:g} s")
            else:
                time.sleep(pause)
                pause = min(2 * pause, _POLL_S[1])
        self._token = token
        return self

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is None or self._delete(token):
            return
        log.warning(
            "the ask lock of study '%s' was taken over by another worker while this one held "
            "it (over %g s)",
            self.study_name,
            self.lease_s,
        )

    def close(self) -> None:
        """Close the lock's database connections."""
        self.engine.dispose()

    def _insert(self, token: str) -> bool:
        import sqlalchemy

        row = {"study_name": self.study_name, "token": token, "holder": self.holder}
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(**row))
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    def _row(self) -> Any:
        import sqlalchemy

        c = self.table.c
        query = sqlalchemy.select(c.token, c.holder).where(c.study_name == self.study_name)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def _delete(self, token: str) -> bool:
        c = self.table.c
        query = self.table.delete().where(c.study_name == self.study_name, c.token == token)
        with self.engine.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def _take_over(self, row: Any, why: str) -> None:
        if self._delete(row.token):
            log.warning(
                "ask lock of study '%s': took it over from %s (%s)",
                self.study_name,
                row.holder,
                why,
            )


def ask_lock_table() -> Any:
    """The lock's table (SQLAlchemy Core): at most one row per study while a worker holds it."""
    import sqlalchemy

    return sqlalchemy.Table(
        ASK_LOCK_TABLE,
        sqlalchemy.MetaData(),
        sqlalchemy.Column("study_name", sqlalchemy.String(512), primary_key=True),
        sqlalchemy.Column("token", sqlalchemy.String(32), nullable=False),
        sqlalchemy.Column("holder", sqlalchemy.String(300), nullable=False),
    )
