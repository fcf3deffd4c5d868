"""`nnship.tune.storage.open_storage` on a real PostgreSQL 16 server (tests/tune/conftest.py):
URLs as users write them, concurrent first use of an empty database, heartbeats and the retry of
a dead worker's trial, and the one-line errors (unreachable server, missing driver)."""

from __future__ import annotations

import socket
import sys
import threading
import time

import optuna
import pytest

from nnship.tune.storage import StorageError, TrialHeartbeat, open_storage


@pytest.fixture
def closed_port():
    """A TCP port on 127.0.0.1 that refuses connections: bound, never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_plain_postgresql_url_opens_with_the_installed_driver(postgres_url, tmp_path):
    # SQLAlchemy 2.1 reads `postgresql://` as psycopg 3, which is not installed here
    assert "+" not in postgres_url.split("://")[0]
    storage = open_storage(postgres_url, tmp_path, heartbeat_interval=5)
    study = optuna.create_study(storage=storage, study_name="s", directions=["minimize"])
    study.optimize(lambda t: t.suggest_float("a", 0.0, 1.0), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(postgres_url, tmp_path))
    assert [t.state for t in again.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert storage.get_heartbeat_interval() == 5
    assert not (tmp_path / "study.db").exists()  # a URL never falls back to the embedded file


def test_workers_starting_together_on_an_empty_database_do_not_race(postgres_url, tmp_path):
    # CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL: without the advisory lock some
    # of these die on "duplicate key value violates unique constraint pg_type_typname_nsp_index"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            storage = open_storage(postgres_url, tmp_path)
            optuna.create_study(storage=storage, study_name="shared", load_if_exists=True)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    names = optuna.study.get_all_study_names(open_storage(postgres_url, tmp_path))
    assert names == ["shared"]


def test_a_trial_without_heartbeat_is_failed_and_requeued_with_its_params(postgres_url, tmp_path):
    storage = open_storage(postgres_url, tmp_path, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hb", directions=["minimize"])
    trial = study.ask()
    trial.suggest_categorical("quantize.method", ["entropy", "mse"])
    TrialHeartbeat(storage, "hb", trial.number).beat()  # then the "worker" dies: no more beats
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)  # what a surviving worker does before asking
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].params == study.trials[0].params


def test_an_unreachable_server_is_one_line_naming_the_host_without_password(closed_port, tmp_path):
    url = f"postgresql://nnship:hunter2secret@127.0.0.1:{closed_port}/nnship"
    with pytest.raises(StorageError) as info:
        open_storage(url, tmp_path)
    message = str(info.value)
    assert f"host 127.0.0.1:{closed_port}" in message
    assert "hunter2secret" not in message
    assert "\n" not in message
    assert not (tmp_path / "study.db").exists()


def test_a_missing_driver_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import psycopg2 -> ImportError
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError, match="pip install psycopg2-binary"):
        open_storage("postgresql://u@127.0.0.1:1/db", tmp_path)


def test_a_url_that_is_no_database_url_is_named(tmp_path):
    with pytest.raises(StorageError, match="'postgress://u@db/x' is not a storage URL"):
        open_storage("postgress://u@db/x", tmp_path)


def test_heartbeat_settings_come_from_the_environment_for_a_url(
    postgres_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("NNSHIP_TUNE_HEARTBEAT_S", "3")
    monkeypatch.setenv("NNSHIP_TUNE_GRACE_S", "7")
    storage = open_storage(postgres_url, tmp_path)
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (3, 7)
    monkeypatch.setenv("NNSHIP_TUNE_HEARTBEAT_S", "soon")
    with pytest.raises(StorageError, match="NNSHIP_TUNE_HEARTBEAT_S"):
        open_storage(postgres_url, tmp_path)
