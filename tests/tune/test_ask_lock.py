"""`nnship.tune.ask_lock.AskLock` on SQLite and on the fixture's real PostgreSQL server: one
holder at a time, the budget of asks kept, a dead or hung holder taken over."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest

from nnship.tune.ask_lock import ASK_LOCK_TABLE
from nnship.tune.storage import open_ask_lock, open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """One study database: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


def _hold(url: str, holder: str, tmp_path) -> None:  # noqa: ANN001
    """Leave the lock's row of study 's' behind, as a worker `holder` that died holding it."""
    import sqlalchemy

    lock = open_ask_lock(url, tmp_path, "s")
    with lock.engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(f"INSERT INTO {ASK_LOCK_TABLE} VALUES ('s', 'dead', :h)"),
            {"h": holder},
        )
    lock.close()


def test_one_worker_at_a_time_holds_the_lock(url, tmp_path):
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def work(n: int) -> None:
        lock = open_ask_lock(url, tmp_path, "s")
        try:
            for _ in range(15):
                with lock:
                    inside.append(n)
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                    time.sleep(0.002)
                    inside.remove(n)
        finally:
            lock.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert overlaps == []


def test_workers_asking_under_the_lock_run_the_budget_exactly(url, tmp_path):
    """What the tune loop does under the lock: count the study's trials, ask when the budget
    is not spent. Without the lock, workers that count at once all ask, past the budget."""
    budget = 12
    optuna.create_study(storage=open_storage(url, tmp_path), study_name="s")

    def work() -> None:
        study = optuna.load_study(study_name="s", storage=open_storage(url, tmp_path))
        lock = open_ask_lock(url, tmp_path, "s")
        try:
            while True:
                with lock:
                    if len(study.get_trials(deepcopy=False)) >= budget:
                        return
                    trial = study.ask()
                time.sleep(0.01)
                study.tell(trial, 0.0)
        finally:
            lock.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    study = optuna.load_study(study_name="s", storage=open_storage(url, tmp_path))
    assert len(study.trials) == budget


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over_at_once(url, tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _hold(url, f"{socket.gethostname()}-{dead.pid}", tmp_path)
    lock = open_ask_lock(url, tmp_path, "s")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), lock:
        pass
    lock.close()
    assert time.monotonic() - started < 10  # not the 60 s lease
    assert "its process is gone" in caplog.text


def test_a_lock_held_from_another_host_is_taken_over_after_the_lease(url, tmp_path, caplog):
    _hold(url, "another-host-1234", tmp_path)
    lock = open_ask_lock(url, tmp_path, "s", lease_s=0.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), lock:
        waited = time.monotonic() - started
    lock.close()
    assert waited >= 0.5
    assert "took it over from another-host-1234" in caplog.text


def _rows(lock) -> int:  # noqa: ANN001
    import sqlalchemy

    with lock.engine.connect() as conn:
        return conn.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {ASK_LOCK_TABLE}")).scalar()


def test_a_holder_that_overran_its_lease_keeps_out_of_the_new_one(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    slow, fast = open_ask_lock(url, tmp_path, "s"), open_ask_lock(url, tmp_path, "s", lease_s=0.2)
    with caplog.at_level(logging.WARNING):
        slow.__enter__()
        with fast:  # takes it over after 0.2 s: `slow` is alive here, so only the lease counts
            slow.__exit__(None, None, None)  # must not delete `fast`'s row
            assert _rows(fast) == 1
    assert _rows(fast) == 0
    assert "was taken over by another worker" in caplog.text
    slow.close()
    fast.close()


def test_studies_have_a_lock_each(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    a, b = open_ask_lock(url, tmp_path, "a"), open_ask_lock(url, tmp_path, "b", lease_s=60)
    started = time.monotonic()
    with a, b:
        pass
    assert time.monotonic() - started < 5
    a.close()
    b.close()
