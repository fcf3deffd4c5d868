"""Nothing is lost: a tune run killed with SIGKILL mid-trial resumes without recomputing a
finished trial; its interrupted trial is rerun with the same parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nnship.tune.records import read_trials

SPACE = """
[tune]
sampler = "grid"
[tune.space]
"quantize.method" = ["minmax", "percentile"]
"""


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume_recomputes_no_finished_trial(tune_recipe, tmp_path):
    recipe = tune_recipe(SPACE)
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "nnship.cli.main", "-q", "tune", str(recipe), "-o", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        # kill once trial 0 is recorded and trial 1's build has started
        while time.time() < deadline and proc.poll() is None:
            if (out / "trials" / "1").exists() and len(read_trials(out)) == 1:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    before = {r.number: r for r in read_trials(out)}
    assert list(before) == [0] and before[0].state == "complete"

    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = read_trials(out)
    by_number = {r.number: r for r in after}
    assert by_number[0].started == before[0].started  # trial 0 was not run again
    assert by_number[1].state == "failed" and "interrupted" in by_number[1].reason
    built = [r for r in after if r.state == "complete"]
    methods = sorted(r.params["quantize.method"] for r in built)
    assert methods == ["minmax", "percentile"]  # every point once, none twice
    rerun = next(r for r in built if r.params == by_number[1].params and r.number != 1)
    assert rerun.number > 1
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == len(after)  # one line per finished trial, none duplicated
