"""The backend-options groups.

- `BackendLoadArgs`: options for a backend's load (`validate`, `bench`): unknown `--key value`
  options are passed through (scoped as `--openvino.hint latency` to reach one backend), and
  `-O KEY=VALUE` where the verb has it; builds the options dict.
- `BackendCompileArgs`: the OpenVINO and TensorRT options of `compile`; builds the API's
  keyword arguments for the chosen backend (options, NNCF calibration data and exclusions).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnship.cli.options.data import DataArgs
from nnship.core.errors import BackendError

__all__ = ["BackendCompileArgs", "BackendLoadArgs"]


@dataclass(frozen=True)
class BackendLoadArgs:
    """Backend load options; `option_flag` adds `-O/--option KEY=VALUE` (the unknown options
    given after it win)."""

    option_flag: bool = False

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        if self.option_flag:
            parser.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                                help="backend load option, e.g. -O hint=throughput")  # fmt: skip
        # `nnship.cli.main` hands the options it does not know to `args.unknown_options`
        parser.set_defaults(pass_unknown_options=True)

    def options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Option name -> value (ints, floats and true/false converted)."""
        from nnship.validate.commands import parse_backend_options

        options = parse_backend_options(getattr(args, "option", []))
        options.update(parse_backend_options(getattr(args, "unknown_options", [])))
        return options


_NNCF_CALIBRATION = DataArgs(
    "--calib",
    help="calibration data: makes a float model INT8 with NNCF (.npz, .npy, folder, ...)",
    limit_flag="--calib-limit",
    limit_help="use at most N calibration samples (default: NNCF's subset, 300)",
)


class BackendCompileArgs:
    """`compile`'s backend options: the OpenVINO group (its `--threads` applies to ONNX
    Runtime too) and the TensorRT group."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        ov = parser.add_argument_group("OpenVINO options")
        ov.add_argument("--device", help="CPU (default), GPU, NPU, AUTO, ...")
        ov.add_argument("--hint", choices=["latency", "throughput"],
                        help="performance hint (default latency)")  # fmt: skip
        ov.add_argument("--threads", type=int, help="CPU inference threads (default: OpenVINO's)")
        ov.add_argument("--num-streams", type=int, help="CPU streams (default: from the hint)")
        ov.add_argument(
            "--cache-dir", type=Path, help="OpenVINO model cache directory (default off)"
        )
        ov.add_argument("--inference-precision", choices=["f32", "bf16", "f16", "auto"],
                        help="float math precision (default f32, so drift is measured honestly)")  # fmt: skip
        ov.add_argument("--compress-fp16", action="store_true", default=None,
                        help="store IR weights as FP16 (default off for float baselines)")  # fmt: skip
        ov.add_argument("--int8-mode", choices=["qdq", "nncf"],
                        help="INT8 from a QDQ ONNX (default, measured faster at equal accuracy) or "
                        "by NNCF on the float IR (implied by --calib)")  # fmt: skip
        _NNCF_CALIBRATION.add_to(ov)
        ov.add_argument("--exclude", action="append", default=[], metavar="NODE",
                        help="ONNX node name NNCF keeps in float (repeatable)")  # fmt: skip
        ov.add_argument("--exclude-op-type", action="append", default=[], metavar="OP",
                        help="ONNX op type NNCF keeps in float (repeatable)")  # fmt: skip
        trt = parser.add_argument_group("TensorRT options")
        trt.add_argument("--workspace-mb", type=int, help="builder workspace in MiB (default 1024)")
        trt.add_argument("--shapes", action="append", default=[], metavar="NAME:MIN,OPT,MAX",
                         help="profile range of one input, shapes joined by 'x', e.g. "
                         "x:1x3x224x224,8x3x224x224,32x3x224x224 (repeatable)")  # fmt: skip
        trt.add_argument(
            "--max-batch", type=int, help="batch range max for dynamic batch axes (default 32)"
        )
        trt.add_argument("--opt-batch", type=int, help="batch the engine is tuned for (default 1)")
        trt.add_argument("--timing-cache", type=Path,
                         help="timing cache file reused across builds (default: in the kit)")  # fmt: skip
        trt.add_argument("--build-engine", choices=["auto", "always", "never"],
                         help="auto (default): build where TensorRT and a GPU exist")  # fmt: skip
        trt.add_argument("--opt-level", type=int, dest="builder_optimization_level",
                         help="builder optimization level 0-5 (default TensorRT's, 3)")  # fmt: skip

    def api_kwargs(self, args: argparse.Namespace, backend: str) -> dict[str, Any]:
        """`backend` (canonical), its `options`, and the NNCF calibration data and exclusions
        (OpenVINO only), as `api.compile` names them. An unknown backend is a `BackendError`."""
        from nnship.backends import canonical_backend

        name = canonical_backend(backend)
        openvino = name == "openvino"
        if openvino:
            options = _openvino_options(args)
        elif name == "tensorrt":
            options = _tensorrt_options(args)
        else:
            options = {"threads": args.threads}
        return {
            "backend": name,
            "options": options,
            "calib_data": args.calib if openvino else None,
            "calib_limit": args.calib_limit,
            "exclude_names": args.exclude if openvino else (),
            "exclude_op_types": args.exclude_op_type if openvino else (),
        }


def _openvino_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "device": args.device,
        "hint": args.hint,
        "threads": args.threads,
        "num_streams": args.num_streams,
        "cache_dir": args.cache_dir,
        "inference_precision": args.inference_precision,
        "compress_to_fp16": args.compress_fp16,
        # calibration data only makes sense for NNCF: --calib implies --int8-mode nncf
        "int8_mode": args.int8_mode or ("nncf" if args.calib else None),
    }


def _tensorrt_options(args: argparse.Namespace) -> dict[str, Any]:
    from nnship.backends.config import ShapeRange

    profile = {}
    for text in args.shapes:
        try:
            name, shape = ShapeRange.parse(text)
        except ValueError as exc:
            raise BackendError(f"--shapes: {exc}") from exc
        profile[name] = shape.model_dump()
    return {
        "workspace_mb": args.workspace_mb,
        "profiles": [profile] if profile else None,
        "max_batch": args.max_batch,
        "opt_batch": args.opt_batch,
        "timing_cache": args.timing_cache,
        "build_engine": args.build_engine,
        "builder_optimization_level": args.builder_optimization_level,
    }
