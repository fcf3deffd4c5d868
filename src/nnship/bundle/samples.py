"""The bundle's sample inputs and each artifact's expected outputs on them.

Samples are the first N samples of the build's evaluation data (else its calibration data,
else seeded random inputs from the input specs: "synthetic"). Expected outputs come from the
artifact in its real runtime (ONNX Runtime, OpenVINO) with one thread, so they repeat exactly;
re-runs with 1 and 2 threads in fresh sessions and the float ONNX reference give the
tolerance (`nnship.bundle.tolerance`). TensorRT artifacts get none: the engine is built on the
device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnship.bundle.source import BuiltArtifact
from nnship.bundle.tolerance import derive_tolerance
from nnship.core import TensorSpec
from nnship.core.errors import NnshipError

log = logging.getLogger(__name__)

RUNNABLE = ("onnxruntime", "openvino")
RERUN_THREADS = (1, 2)


@dataclass(frozen=True)
class SampleSet:
    inputs: dict[str, np.ndarray]
    source: str
    """"evaluation", "calibration" or "synthetic"."""
    fingerprints: dict[str, str]
    """Data split -> the data source's content fingerprint (for the manifest's input hashes)."""

    @property
    def count(self) -> int:
        return len(next(iter(self.inputs.values()))) if self.inputs else 0


def pick_samples(recipe: Any, specs: list[TensorSpec], count: int, *, seed: int = 0) -> SampleSet:
    """`count` samples from the recipe's evaluation data, else its calibration data, else
    synthetic ones (a data file that is gone since the build is logged and skipped)."""
    from nnship.sources.data import open_data_config

    fingerprints: dict[str, str] = {}
    chosen: tuple[dict[str, np.ndarray], str] | None = None
    for split in ("evaluation", "calibration"):
        cfg = getattr(recipe.data, split, None) if recipe is not None else None
        if cfg is None:
            continue
        try:
            data = open_data_config(cfg, specs, recipe.base_dir)
            fingerprints[split] = data.fingerprint()
            if chosen is None:
                chosen = (_first(data, count, specs), split)
        except NnshipError as exc:
            log.warning("bundle samples: cannot read the %s data (%s)", split, exc)
    if chosen is None:
        rng = np.random.default_rng(seed)
        inputs = {
            s.name: rng.standard_normal(s.concrete_shape(count)).astype(s.dtype)
            if np.issubdtype(np.dtype(s.dtype), np.floating)
            else np.zeros(s.concrete_shape(count), dtype=s.dtype)
            for s in specs
        }
        chosen = (inputs, "synthetic")
    return SampleSet(chosen[0], chosen[1], fingerprints)


def _first(data: Any, count: int, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {s.name: [] for s in specs}
    taken = 0
    for batch in data.iter_batches(count):
        inputs = getattr(batch, "inputs", batch)
        for name in parts:
            parts[name].append(np.asarray(inputs[name]))
        taken += len(next(iter(inputs.values())))
        if taken >= count:
            break
    return {name: np.concatenate(arrays)[:count] for name, arrays in parts.items()}


def run_model(
    backend: str,
    entry: Path,
    inputs: dict[str, np.ndarray],
    *,
    config: Any = None,
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Outputs of the model file `entry` in `backend`'s runtime, one fresh session, batch by
    batch when the batch axis is fixed."""
    from nnship.backends.compile import open_artifact

    options = {"threads": threads} if threads is not None else {}
    with open_artifact(entry, backend=backend, config=config, options=options) as runner:
        fixed = [s for s in runner.input_specs if s.shape and isinstance(s.shape[0], int)]
        if not fixed:
            return {k: np.asarray(v) for k, v in runner.run(inputs).items()}
        step = max(1, int(fixed[0].shape[0]))
        count = len(next(iter(inputs.values())))
        parts = [
            runner.run({k: v[i : i + step] for k, v in inputs.items()})
            for i in range(0, count, step)
        ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


@dataclass(frozen=True)
class Expected:
    outputs: dict[str, np.ndarray]
    tolerance: dict[str, float]


def expected_outputs(
    built: BuiltArtifact,
    inputs: dict[str, np.ndarray],
    *,
    config: Any,
    reference: dict[str, np.ndarray] | None,
) -> Expected | None:
    """The artifact's outputs on `inputs` and their tolerance; None for a backend that cannot
    run here (TensorRT)."""
    if built.backend not in RUNNABLE:
        return None
    expected = run_model(built.backend, built.entry, inputs, config=config, threads=1)
    reruns = [
        run_model(built.backend, built.entry, inputs, config=config, threads=n)
        for n in RERUN_THREADS
    ]
    return Expected(expected, derive_tolerance(expected, reruns, reference))
