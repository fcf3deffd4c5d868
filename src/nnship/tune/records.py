"""What a tune run writes, as typed records (contract A of this session, docs/tune.md).

- `trials.jsonl`: one `TrialRecord` per finished trial (complete, infeasible, pruned by the
  early-stop rule, failed), appended as one line each with a single `write` + `fsync`.
- `pareto.json`: one `ParetoFile`, the source of truth of the fronts.
- `tune.json`: one `TuneSettings`, the run's settings (recipe and space hashes, storage, study).

Readers (`nnship tune show`, `tune.html`, `bench/tune.py`) read these through
`read_trials` / `read_pareto` / `read_settings` and never need Optuna.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nnship.core.errors import NnshipError

__all__ = [
    "PARETO_NAME",
    "SETTINGS_NAME",
    "TRIALS_NAME",
    "ArtifactMetrics",
    "Fingerprint",
    "FrontPoint",
    "ParetoFile",
    "ParetoGroup",
    "RelaxedResult",
    "TrialRecord",
    "TrialState",
    "TuneSettings",
    "append_trial",
    "read_pareto",
    "read_settings",
    "read_trials",
]

TRIALS_NAME = "trials.jsonl"
PARETO_NAME = "pareto.json"
SETTINGS_NAME = "tune.json"

TrialState = Literal["complete", "infeasible", "pruned", "failed"]
"""complete: built and feasible; infeasible: built, misses a constraint on every artifact;
pruned: stopped early by the distillation early-stop rule (reason says why); failed: raised."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer writers may add fields; old readers cope


class Fingerprint(_Record):
    """The machine a latency was measured on. Latencies of different ids are never ranked
    together. `id` hashes cpu, flags, cores and runtimes."""

    id: str
    cpu: str = ""
    flags: list[str] = Field(default_factory=list)
    """The ISA flags that change kernels (avx2, avx512_vnni, amx_*, ...)."""
    cores: int | None = None
    runtimes: dict[str, str] = Field(default_factory=dict)
    """Package -> version (torch, onnxruntime, openvino, ...)."""


class ArtifactMetrics(_Record):
    """One artifact of one trial: where it is, its hash, size, latency (ms) and accuracy
    metrics against the float baseline, and whether it meets the tune constraints."""

    backend: str
    precision: str
    path: str
    sha256: str | None = None
    size_bytes: int | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    """top1_drop (points), top1_agreement (%), top5_agreement (%), cosine, sqnr_db, ..."""
    feasible: bool = False
    violation: float = 0.0
    """Sum over constraints of how far the artifact misses each, relative to the threshold
    (0 when feasible)."""
    missed: dict[str, float] = Field(default_factory=dict)
    """Constraint -> by how much it was missed (in the constraint's own unit)."""

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.precision}"


class TrialRecord(_Record):
    """One finished trial, one line of `trials.jsonl`."""

    number: int
    state: TrialState
    params: dict[str, Any] = Field(default_factory=dict)
    recipe: dict[str, Any] = Field(default_factory=dict)
    """The full resolved recipe the trial built (without `[tune]`)."""
    artifacts: list[ArtifactMetrics] = Field(default_factory=list)
    objectives: dict[str, float | int | None] = Field(default_factory=dict)
    """`latency_ms` / `size_bytes` of the trial's best feasible artifact (None: none)."""
    feasible: bool = False
    violation: float = 0.0
    reason: str | None = None
    stages: dict[str, str] = Field(default_factory=dict)
    """Stage -> "ran" | "reused" | "skipped" in this trial's build."""
    fingerprint: Fingerprint | None = None
    worker: str = ""
    """hostname-pid of the process that ran it."""
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    build_dir: str = ""
    compress_key: str | None = None
    """Hash of what the compression stages depend on (model, [prune], [distill], data, seed),
    when the trial distills: a pruned (hopeless) key is not distilled again."""

    def feasible_artifacts(self) -> list[ArtifactMetrics]:
        return [a for a in self.artifacts if a.feasible]


class FrontPoint(_Record):
    trial: int
    latency_ms: float | None = None
    """p50 latency measured in the trial (ms)."""
    retimed_latency_ms: float | None = None
    """p50 latency from the final interleaved re-timing pass (ms); the front is ranked on it."""
    size_bytes: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    path: str = ""
    sha256: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    missed: dict[str, float] = Field(default_factory=dict)
    """Relaxed fronts only: how far this point misses each constraint."""


class ParetoGroup(_Record):
    """The non-dominated artifacts of one (backend, precision, fingerprint)."""

    backend: str
    precision: str
    fingerprint: str
    front: list[FrontPoint] = Field(default_factory=list)


class RelaxedResult(_Record):
    """When no trial met the constraints: the closest trial and the fronts without them."""

    closest_trial: int | None = None
    missed_by: dict[str, float] = Field(default_factory=dict)
    groups: list[ParetoGroup] = Field(default_factory=list)


class ParetoFile(_Record):
    objectives: list[str] = Field(default_factory=list)
    constraints: dict[str, float] = Field(default_factory=dict)
    groups: list[ParetoGroup] = Field(default_factory=list)
    relaxed: RelaxedResult | None = None
    fingerprints: dict[str, Fingerprint] = Field(default_factory=dict)
    trials: dict[str, int] = Field(default_factory=dict)
    """State -> count of trials in `trials.jsonl` when this was written."""
    retimed: bool = False
    """True when the final interleaved re-timing pass ran on this machine."""


class TuneSettings(_Record):
    """`tune.json`: what a tune folder was started with (resume and other workers check it)."""

    study: str
    storage: str
    """The storage URL without a password."""
    recipe_hash: str
    space_hash: str
    recipe_path: str | None = None
    sampler: str = "tpe"
    seed: int = 0
    objectives: list[str] = Field(default_factory=list)
    constraints: dict[str, float] = Field(default_factory=dict)
    cache: str = ""


def append_trial(tune_dir: Path | str, record: TrialRecord) -> None:
    """Append one line to `trials.jsonl` in a single write, flushed to disk: a reader sees
    whole lines only (a crash mid-write leaves at most a partial last line, which readers skip)."""
    path = Path(tune_dir) / TRIALS_NAME
    line = (record.model_dump_json() + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_trials(tune_dir: Path | str) -> list[TrialRecord]:
    """Every finished trial of `tune_dir/trials.jsonl`, by trial number; the last line for a
    number wins (a trial rerun after a crash). A torn last line is skipped."""
    path = Path(tune_dir) / TRIALS_NAME
    if not path.is_file():
        return []
    by_number: dict[int, TrialRecord] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = TrialRecord.model_validate_json(line)
        except ValidationError as exc:
            if i == len(lines):  # torn by a crash mid-append
                continue
            raise NnshipError(f"{path}:{i}: not a trial record: {exc.errors()[0]['msg']}") from exc
        by_number[record.number] = record
    return [by_number[n] for n in sorted(by_number)]


def _read_model(path: Path, model: type[_Record], what: str) -> Any:
    if not path.is_file():
        raise NnshipError(f"{path} does not exist: is '{path.parent}' a tune folder?")
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise NnshipError(f"{path}: not a {what}: {exc}") from exc


def read_pareto(tune_dir: Path | str) -> ParetoFile:
    """`tune_dir/pareto.json`."""
    return _read_model(Path(tune_dir) / PARETO_NAME, ParetoFile, "pareto file")


def read_settings(tune_dir: Path | str) -> TuneSettings:
    """`tune_dir/tune.json`."""
    return _read_model(Path(tune_dir) / SETTINGS_NAME, TuneSettings, "tune settings file")
