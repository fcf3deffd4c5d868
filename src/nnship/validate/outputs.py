"""Saved run outputs: capture a runner's outputs on one machine, compare them on another.

Format (version 1), two files side by side:
- `NAME.npz` (plain `np.savez`, no pickles): `output_0`, `output_1`, ... (one array per model
  output, all samples stacked on axis 0), `sample_hashes` (uint8 [N, 16]: BLAKE2b-128 of each
  sample's inputs: name, dtype, per-sample shape and bytes of every input in name order), and
  `labels` when the data had labels.
- `NAME.json`, the manifest: `format` ("nnship-outputs"), `format_version`, `label`, `runner`,
  `created`, `nnship_version`, `data_fingerprint` (the DataSource fingerprint), `num_samples`,
  `inputs` / `outputs` ([{name, shape, dtype}], outputs also carry their npz `key`),
  `npz_sha256`, `environment` (see `nnship.core.environment`) and an open `extra` dict.

`SavedOutputsRunner` replays the outputs as a Runner: each input sample is looked up by its hash,
so replays work at any batch size and on any subset or reordering of the captured samples.
Outputs are held in memory until saved (fine for evaluation sets; size is N x output size).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import nnship
from nnship.core import Batch, Runner, TensorSpec
from nnship.core.environment import capture_environment
from nnship.core.errors import DataError, ReportError
from nnship.core.fileio import atomic_path, sha256_file, write_json_atomic

FORMAT = "nnship-outputs"
FORMAT_VERSION = 1


def manifest_path(npz_path: Path | str) -> Path:
    """The manifest beside an outputs file: `run.npz` -> `run.json`."""
    return Path(npz_path).with_suffix(".json")


def sample_hashes(batch: Batch) -> np.ndarray:
    """BLAKE2b-128 of each sample's inputs, as uint8 [N, 16] (see the module docstring)."""
    names = sorted(batch)
    n = int(np.asarray(batch[names[0]]).shape[0]) if names else 0
    arrays = {k: np.asarray(batch[k]) for k in names}
    out = np.empty((n, 16), dtype=np.uint8)
    for i in range(n):
        digest = hashlib.blake2b(digest_size=16)
        for name in names:
            row = np.ascontiguousarray(arrays[name][i])
            digest.update(f"{name}|{row.dtype.str}|{row.shape}|".encode())
            digest.update(row.tobytes())
        out[i] = np.frombuffer(digest.digest(), dtype=np.uint8)
    return out


class OutputRecorder:
    """Collects a runner's outputs batch by batch; `save(path)` writes the .npz + manifest."""

    def __init__(self, label: str, runner: Runner, *, data_fingerprint: str | None = None) -> None:
        self.label = label
        self.runner_name = runner.name
        self.input_specs = list(runner.input_specs)
        self.data_fingerprint = data_fingerprint
        self._hashes: list[np.ndarray] = []
        self._outputs: dict[str, list[np.ndarray]] = {}
        self._labels: list[np.ndarray] = []
        self._input_dtypes: dict[str, str] = {}
        self.extra: dict[str, Any] = {}

    def add(self, inputs: Batch, outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> None:
        self._hashes.append(sample_hashes(inputs))
        self._input_dtypes = {k: np.asarray(v).dtype.name for k, v in inputs.items()}
        for name, value in outputs.items():
            self._outputs.setdefault(name, []).append(np.asarray(value))
        if labels is not None:
            self._labels.append(np.asarray(labels))

    def save(self, path: Path | str) -> Path:
        """Write `path` (.npz) and its manifest (.json) atomically; returns the .npz path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise DataError(f"Saved outputs path '{path}' must end in .npz")
        if not self._hashes:
            raise DataError(f"No outputs were recorded for '{self.label}'")
        arrays: dict[str, np.ndarray] = {"sample_hashes": np.concatenate(self._hashes)}
        out_meta = []
        for i, (name, parts) in enumerate(self._outputs.items()):
            key = f"output_{i}"
            arrays[key] = np.concatenate(parts)
            out_meta.append(
                {
                    "name": name,
                    "key": key,
                    "shape": ["batch", *arrays[key].shape[1:]],
                    "dtype": arrays[key].dtype.name,
                }
            )
        if self._labels:
            arrays["labels"] = np.concatenate(self._labels)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # a handle: savez would append .npz to a temp name
        inputs = [
            {
                "name": s.name,
                "shape": ["batch", *s.shape[1:]],
                "dtype": self._input_dtypes.get(s.name, s.dtype),
            }
            for s in self.input_specs
        ]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "label": self.label,
            "runner": self.runner_name,
            "created": datetime.now(timezone.utc).isoformat(),
            "nnship_version": nnship.__version__,
            "data_fingerprint": self.data_fingerprint,
            "num_samples": int(arrays["sample_hashes"].shape[0]),
            "inputs": inputs,
            "outputs": out_meta,
            "npz": path.name,
            "npz_sha256": sha256_file(path),
            "environment": capture_environment().model_dump(mode="json"),
            "extra": self.extra,
        }
        write_json_atomic(manifest_path(path), manifest)
        return path


def save_outputs(
    path: Path | str,
    runner: Runner,
    batches: Any,
    *,
    label: str | None = None,
    data_fingerprint: str | None = None,
) -> Path:
    """Run `runner` over `batches` (an iterable of `LabeledBatch`) and save its outputs."""
    recorder = OutputRecorder(label or runner.name, runner, data_fingerprint=data_fingerprint)
    for item in batches:
        recorder.add(item.inputs, runner.run(item.inputs), item.labels)
    return recorder.save(path)


class SavedOutputs:
    """A loaded outputs file: `manifest`, `outputs` by name, `hashes`, optional `labels`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.manifest = _read_manifest(self.path)
        if not self.path.is_file():
            raise DataError(f"Saved outputs '{self.path}' do not exist (manifest found)")
        if sha256_file(self.path) != self.manifest.get("npz_sha256"):
            raise DataError(
                f"Saved outputs '{self.path}' do not match their manifest "
                f"'{manifest_path(self.path)}' (hash differs): the pair was mixed up or edited"
            )
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"Saved outputs '{self.path}' cannot be read: {exc}") from exc
        try:
            self.hashes = arrays["sample_hashes"]
            self.outputs = {o["name"]: arrays[o["key"]] for o in self.manifest["outputs"]}
        except KeyError as exc:
            raise DataError(f"Saved outputs '{self.path}' lack array {exc}") from exc
        self.labels = arrays.get("labels")
        self.index = {bytes(h): i for i, h in enumerate(self.hashes)}

    @property
    def label(self) -> str:
        return str(self.manifest.get("label", self.path.stem))


def _read_manifest(npz_path: Path) -> dict[str, Any]:
    path = manifest_path(npz_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"Manifest '{path}' for saved outputs '{npz_path}' does not exist; keep the .json "
            "written beside the .npz"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"Manifest '{path}' is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReportError(f"'{path}' is not an nnship outputs manifest (format != '{FORMAT}')")
    if data.get("format_version") != FORMAT_VERSION:
        raise ReportError(
            f"Manifest '{path}' has format_version {data.get('format_version')!r}; this nnship "
            f"{nnship.__version__} reads version {FORMAT_VERSION}"
        )
    for key in ("inputs", "outputs"):
        if not isinstance(data.get(key), list):
            raise ReportError(f"Manifest '{path}' is corrupt: field '{key}' missing or not a list")
    return data


class SavedOutputsRunner(Runner):
    """Replays saved outputs: each input sample is found by its hash (any batch size/order)."""

    def __init__(self, saved: SavedOutputs | Path | str) -> None:
        self.saved = saved if isinstance(saved, SavedOutputs) else SavedOutputs(saved)
        self.name = f"saved:{self.saved.manifest.get('runner', self.saved.label)}"
        self._inputs = [TensorSpec.from_dict(s) for s in self.saved.manifest["inputs"]]

    @property
    def input_specs(self) -> list[TensorSpec]:
        return self._inputs

    @property
    def output_names(self) -> list[str]:
        return list(self.saved.outputs)

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        rows = []
        for i, digest in enumerate(sample_hashes(batch)):
            idx = self.saved.index.get(bytes(digest))
            if idx is None:
                raise DataError(
                    f"Sample {i} of this batch is not among the {len(self.saved.index)} samples "
                    f"saved in '{self.saved.path}': replay needs the same evaluation data "
                    "(same preprocessing and dtype)"
                )
            rows.append(idx)
        take = np.asarray(rows, dtype=np.int64)
        return {name: arr[take] for name, arr in self.saved.outputs.items()}
