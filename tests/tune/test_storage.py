"""`nnship.tune.storage` on the storages that need no server: the heartbeat of an ask-and-tell
trial (`TrialHeartbeat`) on an SQLite file, and none on storages without heartbeats."""

from __future__ import annotations

import time

import optuna

from nnship.tune.storage import TrialHeartbeat, heartbeat_interval, open_storage


def test_a_stopped_heartbeat_fails_and_requeues_an_ask_and_tell_trial(tmp_path):
    storage = open_storage(
        f"sqlite:///{tmp_path / 'study.db'}", tmp_path, heartbeat_interval=1, grace_period=1
    )
    study = optuna.create_study(storage=storage, study_name="hb")
    trial = study.ask()
    trial.suggest_categorical("quantize.method", ["entropy", "mse"])
    with TrialHeartbeat(storage, "hb", trial.number) as heartbeat:
        heartbeat.beat()
        time.sleep(2.5)  # stale by now without the thread's beats
    optuna.storages.fail_stale_trials(study)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]
    time.sleep(2.5)  # the "worker" died: no heartbeat for longer than the grace period
    optuna.storages.fail_stale_trials(study)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].params == study.trials[0].params


def test_a_storage_without_heartbeats_gets_none(tmp_path):
    memory = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=memory, study_name="m")
    trial = study.ask()
    assert heartbeat_interval(memory) is None
    assert heartbeat_interval(open_storage(None, tmp_path)) is None  # the embedded file
    with TrialHeartbeat(memory, "m", trial.number) as heartbeat:
        heartbeat.beat()  # nothing to record
    study.tell(trial, 1.0)
