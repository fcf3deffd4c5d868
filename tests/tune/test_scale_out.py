"""Scale-out on one shared PostgreSQL study (the fixture's real server): real `nnship tune ...
--storage URL --study S` worker processes on a quantize-only grid over the tiny digits CNN.

- two workers started together finish the grid between them, every point exactly once (also
  on one SQLite file, with a tune folder each: the ask lock lives in the study's database);
- a worker SIGKILLed mid-trial loses nothing: the other worker reruns its trial (heartbeat
  every 1 s, dead after 3 s, set through $NNSHIP_TUNE_HEARTBEAT_S / $NNSHIP_TUNE_GRACE_S);
- a worker with another recipe on the same study is refused (exit 2);
- an unreachable server (a closed port on 127.0.0.1) is one line naming the host.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nnship.tune.storage import open_storage
from tests.recipes import digits_recipe

pytestmark = pytest.mark.slow

METHODS = ["minmax", "percentile", "mse", "entropy"]
HEARTBEAT_ENV = {"NNSHIP_TUNE_HEARTBEAT_S": "1", "NNSHIP_TUNE_GRACE_S": "3"}


@pytest.fixture(scope="module")
def grid_recipe(tmp_path_factory, trained_digits_cnn, digits_npz) -> Path:
    """The tiny digits CNN, ONNX Runtime only, a 4-point grid over the range method."""
    folder = tmp_path_factory.mktemp("scale_out")
    path = folder / "recipe.toml"
    path.write_text(
        digits_recipe(
            trained_digits_cnn,
            digits_npz,
            name="scale-out",
            sections=f"""
            [backends]
            targets = ["onnxruntime"]

            [validate.latency]
            enabled = true
            runs = 10
            min_warmup_runs = 2
            max_warmup_runs = 10

            [tune]
            objectives = ["latency", "size"]
            constraints = {{ max_top1_drop = 5.0 }}
            sampler = "grid"

            [tune.space]
            "quantize.method" = {json.dumps(METHODS)}
            """,
        ),
        encoding="utf-8",
    )
    return path


def _worker(recipe: Path, url: str, out: Path, tune_dir: Path | None = None) -> subprocess.Popen:
    """One `nnship tune` worker process (tune folder `tune_dir`, default `out/tune`; the stage
    cache shared with its siblings); its output goes to `out/worker.log`."""
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "worker.log").open("w")
    cmd = [sys.executable, "-m", "nnship.cli.main", "-q", "tune", str(recipe),
           "--storage", url, "--study", "s", "-o", str(tune_dir or out / "tune"),
           "--cache", str(out.parent / "shared-cache")]  # fmt: skip
    env = {**os.environ, **HEARTBEAT_ENV, "COLUMNS": "200"}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)


def _wait(proc: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _log(out: Path) -> str:
    return (out / "worker.log").read_text()


def _records(tune_dir: Path) -> list[dict]:
    path = tune_dir / "trials.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _study(url: str, tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(url, tmp_path))


def _methods(trials) -> list[str]:  # noqa: ANN001
    return sorted(t.params["quantize.method"] for t in trials)


@pytest.fixture(scope="module")
def two_workers(grid_recipe, postgres_server, tmp_path_factory):
    """Two workers started together on one empty study, one tune folder and one stage cache
    (as on a cluster's shared volume); both waited for."""
    name = "nnship_two_workers"
    postgres_server.psql(f"CREATE DATABASE {name};")
    url = postgres_server.get_uri(name)
    root = tmp_path_factory.mktemp("two")
    outs, tune_dir = [root / "a", root / "b"], root / "tune"
    procs = [_worker(grid_recipe, url, out, tune_dir) for out in outs]
    codes = [_wait(p) for p in procs]
    return url, outs, tune_dir, codes


def test_two_workers_finish_the_grid_with_every_point_once(two_workers, tmp_path):
    url, outs, tune_dir, codes = two_workers
    assert codes == [0, 0], [_log(o)[-2000:] for o in outs]
    study = _study(url, tmp_path)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert _methods(complete) == sorted(METHODS)  # every grid point exactly once
    assert len(study.trials) == len(METHODS)  # nothing run twice, nothing failed
    records = _records(tune_dir)
    assert sorted(r["number"] for r in records) == list(range(len(METHODS)))
    assert len({r["worker"] for r in records}) == 2  # both workers took trials, one folder
    assert {r["state"] for r in records} == {"complete"}


def test_two_workers_on_one_sqlite_file_run_every_grid_point_once(grid_recipe, tmp_path):
    """The ask lock is a row in the study's own database, so it serialises workers on any
    database Optuna supports: here an SQLite file (as on a disk several hosts share), each
    worker with its own tune folder, so nothing on the local disk could serialise them."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [_worker(grid_recipe, url, out) for out in outs]
    assert [_wait(p) for p in procs] == [0, 0], [_log(o)[-2000:] for o in outs]
    study = _study(url, tmp_path)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert _methods(complete) == sorted(METHODS)  # every grid point exactly once
    assert len(study.trials) == len(METHODS)  # nothing run twice, nothing failed
    records = [
        r
        for out in outs
        if (out / "tune" / "trials.jsonl").exists()
        for r in _records(out / "tune")
    ]
    assert sorted(r["number"] for r in records) == list(range(len(METHODS)))


def test_a_worker_with_another_recipe_is_refused(two_workers, grid_recipe, tmp_path):
    url = two_workers[0]
    other = tmp_path / "other.toml"
    other.write_text(grid_recipe.read_text().replace("runs = 10", "runs = 11"), encoding="utf-8")
    proc = _worker(other, url, tmp_path / "w")
    assert _wait(proc) == 2
    log = _log(tmp_path / "w")
    assert "study 's'" in log and "another recipe" in log
    assert "Traceback" not in log
    assert len(_study(url, tmp_path).trials) == len(METHODS)  # it ran nothing


@pytest.mark.parametrize(
    "methods",
    [
        pytest.param(METHODS, id="work-left"),
        pytest.param(METHODS[:2], id="last-point"),
    ],
)
def test_a_worker_killed_mid_trial_loses_nothing(grid_recipe, postgres_url, tmp_path, methods):
    """Both workers are in their first trial when the victim dies; with 4 points the survivor
    still has work (it reaps the stale trial before its next ask), with 2 it has none."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(grid_recipe.read_text().replace(json.dumps(METHODS), json.dumps(methods)))
    victim, survivor = tmp_path / "victim", tmp_path / "survivor"
    doomed = _worker(recipe, postgres_url, victim)
    helper = _worker(recipe, postgres_url, survivor)
    # both are in the loop (the survivor past its start-up recovery) when the victim dies, so
    # only the heartbeat can tell the survivor that the victim's trial is dead
    _running_trial_of(helper.pid, postgres_url, tmp_path)
    killed_trial = _running_trial_of(doomed.pid, postgres_url, tmp_path)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    assert _wait(helper) == 0, _log(survivor)[-2000:]
    study = _study(postgres_url, tmp_path)
    states = {t.number: t.state for t in study.trials}
    assert states[killed_trial.number] == optuna.trial.TrialState.FAIL
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert _methods(complete) == sorted(methods)  # the killed point was rerun, once
    rerun = [t for t in complete if t.params == killed_trial.params]
    assert rerun and all(t.number > killed_trial.number for t in rerun)
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)


def _running_trial_of(pid: int, url: str, tmp_path: Path, timeout: float = 120):
    """Wait until worker `pid` runs a trial that has its parameters; return it (frozen)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            study = _study(url, tmp_path)
        except KeyError:  # the study does not exist yet
            time.sleep(0.3)
            continue
        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if str(t.user_attrs.get("worker", "")).endswith(f"-{pid}") and t.params:
                return t
        time.sleep(0.3)
    raise AssertionError(f"worker {pid} never ran a trial")


def test_an_unreachable_server_is_one_line_naming_the_host(grid_recipe, tmp_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        port = sock.getsockname()[1]
        url = f"postgresql://nnship:hunter2secret@127.0.0.1:{port}/nnship"
        proc = _worker(grid_recipe, url, tmp_path / "w")
        assert _wait(proc) == 2
    finally:
        sock.close()
    log = _log(tmp_path / "w").strip()
    assert f"127.0.0.1:{port}" in log
    assert "hunter2secret" not in log and "Traceback" not in log
    assert len(log.splitlines()) == 1, log
    tune_dir = tmp_path / "w" / "tune"
    assert not tune_dir.exists() or not any(tune_dir.iterdir())  # nothing written
