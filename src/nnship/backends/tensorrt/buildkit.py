"""The TensorRT build kit: everything needed to build the engine on the target device.

Engines are tied to the GPU and TensorRT version they are built on, so `nnship compile
--backend tensorrt` always writes, into its output directory:

- the ONNX model (copied, with any external-data file),
- `build_spec.json`: input shapes, optimization profiles (min/opt/max), workspace, file names,
- `build_trtexec.sh`: the equivalent `trtexec` command,
- `build_engine.py`: a standalone Python script (TensorRT's Python API, no nnship needed) that
  builds from `build_spec.json` exactly as nnship does (`nnship.backends.tensorrt.engine`).
"""

from __future__ import annotations

import shlex
import shutil
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nnship.backends.tensorrt.options import ShapeRange, TensorRtOptions
from nnship.core import TensorSpec
from nnship.core.errors import BackendError
from nnship.core.fileio import atomic_path, write_json_atomic, write_text_atomic

SPEC_FILE = "build_spec.json"
TRTEXEC_FILE = "build_trtexec.sh"
SCRIPT_FILE = "build_engine.py"
ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
SPEC_VERSION = 1


@dataclass
class BuildSpec:
    """What a TensorRT build needs, JSON-serialisable (the kit's `build_spec.json`).

    Shapes are lists of ints; `workspace_mb` is MiB; file names are relative to the kit.
    """

    onnx: str
    precision: str
    inputs: list[dict[str, Any]]
    profiles: list[dict[str, dict[str, list[int]]]]
    workspace_mb: int = 1024
    engine: str = ENGINE_FILE
    timing_cache: str | None = TIMING_CACHE_FILE
    builder_optimization_level: int | None = None
    strongly_typed: bool = True
    version: int = SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def derive_profiles(
    specs: Sequence[TensorSpec], options: TensorRtOptions
) -> list[dict[str, dict[str, list[int]]]]:
    """Optimization profiles for the model's inputs: the recipe's ranges where given, the batch
    range (`min_batch`/`opt_batch`/`max_batch`) for a dynamic axis 0 otherwise.

    Raises `BackendError` for a dynamic non-batch dimension with no range, a range naming an
    unknown input, or a range that contradicts a fixed dimension.
    """
    by_name = {s.name: s for s in specs}
    requested = options.profiles or [{}]
    profiles = []
    for index, given in enumerate(requested):
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            raise BackendError(
                f"[backends.tensorrt] profiles[{index}] names unknown input(s) {unknown}; "
                f"the model's inputs are {sorted(by_name)}"
            )
        profile: dict[str, dict[str, list[int]]] = {}
        for spec in specs:
            if spec.name in given:
                profile[spec.name] = _checked_range(spec, given[spec.name], index)
            elif not spec.is_static:
                profile[spec.name] = _default_range(spec, options)
        profiles.append(profile)
    return profiles


def _checked_range(spec: TensorSpec, shape: ShapeRange, index: int) -> dict[str, list[int]]:
    where = f"[backends.tensorrt] profiles[{index}].{spec.name}"
    if len(shape.min) != len(spec.shape):
        raise BackendError(
            f"{where}: rank {len(shape.min)} but input '{spec.name}' has shape "
            f"{spec.shape_str()} (rank {len(spec.shape)})"
        )
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            if not shape.min[axis] == shape.opt[axis] == shape.max[axis] == dim:
                raise BackendError(
                    f"{where}: axis {axis} of '{spec.name}' is fixed at {dim}, but the range "
                    f"gives {shape.min[axis]}/{shape.opt[axis]}/{shape.max[axis]}"
                )
    return {"min": list(shape.min), "opt": list(shape.opt), "max": list(shape.max)}


def _default_range(spec: TensorSpec, options: TensorRtOptions) -> dict[str, list[int]]:
    lo, mid, hi = [], [], []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            lo.append(dim)
            mid.append(dim)
            hi.append(dim)
        elif axis == 0:
            lo.append(options.min_batch)
            mid.append(options.opt_batch)
            hi.append(options.max_batch)
        else:
            raise BackendError(
                f"Dynamic dimension '{dim}' (axis {axis}) of input '{spec.name}' "
                f"{spec.shape_str()} has no TensorRT profile range; give one with "
                f"--shapes {spec.name}:MIN,OPT,MAX (e.g. "
                f"{_example(spec, options)}) or [[backends.tensorrt.profiles]] in the recipe"
            )
    return {"min": lo, "opt": mid, "max": hi}


def _example(spec: TensorSpec, options: TensorRtOptions) -> str:
    def shape(batch: int, other: int) -> str:
        dims = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
            else:
                dims.append(batch if axis == 0 else other)
        return "x".join(str(d) for d in dims)

    return (
        f"{spec.name}:{shape(options.min_batch, 1)},{shape(options.opt_batch, 64)},"
        f"{shape(options.max_batch, 128)}"
    )


def _shape_arg(profile: dict[str, dict[str, list[int]]], key: str) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in rng[key])}" for name, rng in profile.items())


def trtexec_command(spec: BuildSpec) -> list[str]:
    """The `trtexec` command equivalent to nnship's build (TensorRT 10/11 flags).

    `--stronglyTyped` is required on 10.x for Q/DQ and typed FP16 models and a no-op on 11.x;
    no `--int8`/`--fp16` flags: TensorRT 11 removed them and precision comes from the ONNX.
    One `--minShapes/--optShapes/--maxShapes` group is written per profile.
    """
    cmd = [
        "trtexec",
        f"--onnx={spec.onnx}",
        f"--saveEngine={spec.engine}",
        "--stronglyTyped",
        f"--memPoolSize=workspace:{spec.workspace_mb}M",
    ]
    for profile in spec.profiles:
        if profile:
            cmd += [
                f"--minShapes={_shape_arg(profile, 'min')}",
                f"--optShapes={_shape_arg(profile, 'opt')}",
                f"--maxShapes={_shape_arg(profile, 'max')}",
            ]
    if spec.timing_cache:
        cmd.append(f"--timingCacheFile={spec.timing_cache}")
    if spec.builder_optimization_level is not None:
        cmd.append(f"--builderOptimizationLevel={spec.builder_optimization_level}")
    return cmd


def _copy_onnx(onnx_path: Path, kit_dir: Path) -> list[Path]:
    """Copy the ONNX (and external-data files beside it) into the kit, atomically."""
    copied = []
    sources = [onnx_path, *sorted(onnx_path.parent.glob(f"{onnx_path.name}*.data"))]
    for source in sources:
        target = kit_dir / source.name
        if target.exists() and target.resolve() == source.resolve():
            copied.append(target)
            continue
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        copied.append(target)
    return copied


def write_build_kit(onnx_path: Path | str, kit_dir: Path | str, spec: BuildSpec) -> list[Path]:
    """Write the kit (ONNX copy, build_spec.json, build_trtexec.sh, build_engine.py) into
    `kit_dir`; returns the files written. Every file is written atomically."""
    onnx_path, kit_dir = Path(onnx_path), Path(kit_dir)
    files = _copy_onnx(onnx_path, kit_dir)
    files.append(write_json_atomic(kit_dir / SPEC_FILE, spec.to_dict()))
    command = " \\\n  ".join(shlex.quote(part) for part in trtexec_command(spec))
    script = (
        "#!/bin/sh\n"
        "# Build the TensorRT engine on the target device (its GPU and TensorRT version).\n"
        "# Written by nnship; equivalent to `python3 build_engine.py`.\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"{command}\n"
    )
    sh = write_text_atomic(kit_dir / TRTEXEC_FILE, script)
    sh.chmod(sh.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    files.append(sh)
    source = Path(__file__).with_name("engine.py").read_text(encoding="utf-8")
    files.append(write_text_atomic(kit_dir / SCRIPT_FILE, source))
    return files
