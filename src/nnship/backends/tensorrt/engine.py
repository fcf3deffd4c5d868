"""Build a TensorRT engine from a build spec (`build_spec.json`) with TensorRT's Python API.

STANDALONE: this file imports nothing from nnship. It is copied into every TensorRT build kit
as `build_engine.py`, because engines are tied to the GPU and TensorRT version they are built
on and edge devices (Jetson) must build their own; nnship's TensorRT backend builds with the
very same functions, so what the kit does is what nnship tested.

Usage on the target device:  python3 build_engine.py [build_spec.json]

Works with TensorRT 10 and 11: the network is strongly typed (the flag is required for Q/DQ
INT8 and FP16-typed ONNX on 10.x and ignored on 11.x, where strong typing is always on); no
INT8/FP16 builder flags are used (TensorRT 11 removed them): precision comes from the ONNX.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any


class BuildFailed(RuntimeError):
    """The ONNX parser or the builder rejected the model."""


def describe_parser_error(error: Any) -> str:
    """One line for a TensorRT `IParserError`: node name, op, and description."""
    parts = []
    for attr in ("node_name", "node_operator"):
        getter = getattr(error, attr, None)  # TensorRT >= 8.6
        value = getter() if callable(getter) else None
        if value:
            parts.append(f"{attr.replace('_', ' ')} '{value}'")
    if not parts and callable(getattr(error, "node", None)) and error.node() >= 0:
        parts.append(f"node #{error.node()}")
    where = ", ".join(parts) or "model"
    return f"{where}: {error.desc()}"


def parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """A strongly typed network parsed from `onnx_path`; raises `BuildFailed` listing every
    parser error."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildFailed(
            f"TensorRT's ONNX parser rejected '{onnx_path}' ({len(errors)} error(s)):\n  "
            + "\n  ".join(errors or ["no error detail given"])
        )
    return network, parser


def build_serialized(
    spec: dict[str, Any],
    kit_dir: Path,
    *,
    trt: Any = None,
    timing_cache: Path | None = None,
    log_level: str = "WARNING",
) -> tuple[bytes, bytes | None]:
    """Build the engine `spec` describes; returns (serialized engine, serialized timing cache).

    `spec` keys: `onnx` (file name inside `kit_dir`), `workspace_mb` (MiB), `profiles` (list of
    {input: {min, opt, max}}), optional `builder_optimization_level`. The timing cache is read
    from `timing_cache` when the file exists (reused across builds) and returned updated.
    """
    if trt is None:
        trt = importlib.import_module("tensorrt")  # the kit's only dependency
    logger = trt.Logger(getattr(trt.Logger, log_level))
    builder = trt.Builder(logger)
    network, parser = parse_onnx(trt, builder, logger, Path(kit_dir) / spec["onnx"])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec["workspace_mb"]) << 20)
    if spec.get("builder_optimization_level") is not None:
        config.builder_optimization_level = int(spec["builder_optimization_level"])
    for ranges in spec.get("profiles", []):
        profile = builder.create_optimization_profile()
        for name, shape in ranges.items():
            profile.set_shape(name, tuple(shape["min"]), tuple(shape["opt"]), tuple(shape["max"]))
        config.add_optimization_profile(profile)
    cached = b""
    if timing_cache is not None and Path(timing_cache).is_file():
        cached = Path(timing_cache).read_bytes()
    cache = config.create_timing_cache(cached)
    if not config.set_timing_cache(cache, False):
        # A cache from another GPU or TensorRT version: start from an empty one.
        config.set_timing_cache(config.create_timing_cache(b""), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildFailed(
            f"TensorRT could not build an engine from '{spec['onnx']}' (see the log above)"
        )
    new_cache = config.get_timing_cache()
    cache_bytes = bytes(new_cache.serialize()) if new_cache is not None else None
    del parser
    return bytes(serialized), cache_bytes


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    """Build the engine of the kit whose `build_spec.json` is given (default: beside this
    script) and write it (and the timing cache) into the kit."""
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0]) if argv else Path(__file__).with_name("build_spec.json")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    kit_dir = spec_path.parent
    cache_path = kit_dir / spec["timing_cache"] if spec.get("timing_cache") else None
    try:
        engine, cache = build_serialized(spec, kit_dir, timing_cache=cache_path)
    except BuildFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_atomic(kit_dir / spec["engine"], engine)
    if cache is not None and cache_path is not None:
        write_atomic(cache_path, cache)
    print(f"wrote {kit_dir / spec['engine']} ({len(engine)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
