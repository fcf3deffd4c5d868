"""`nnship compile`: lower an ONNX model to an ONNX Runtime, OpenVINO or TensorRT artifact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnship.core.errors import BackendError

_EPILOG = """\
examples:
  nnship compile model.int8.onnx --backend openvino --device CPU -o build/ov
  nnship compile model.onnx --backend openvino --precision int8 --calib calib.npz -o build/ov8
  nnship compile model.int8.onnx --backend tensorrt -o build/trt
  nnship compile enc.onnx --backend tensorrt --shapes input_ids:1x16,8x64,32x128 \\
      --shapes attention_mask:1x16,8x64,32x128 -o build/trt

TensorRT always writes a build kit (ONNX copy, build_spec.json, build_trtexec.sh,
build_engine.py) and builds model.engine only where TensorRT and a CUDA GPU exist.
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compile",
        help="lower an ONNX model to a backend artifact (onnxruntime, openvino, tensorrt)",
        description=(
            "Compile an ONNX model (float, FP16 or QDQ INT8) for one backend and write the "
            "artifact (files + artifact.json) into the output directory. The precision is "
            "detected from the model unless --precision is given."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL.onnx", help="the ONNX model")
    parser.add_argument("--backend", "-b", required=True,
                        help="onnxruntime (ort), openvino (ov) or tensorrt (trt)")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="output directory (default: build/<model>/<backend>)")  # fmt: skip
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16", "int8"], default="auto",
                        help="artifact precision (default auto: from the model; int8 from a "
                        "float model needs OpenVINO with --calib)")  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="OUT.json",
                        help="also write the artifact description as JSON")  # fmt: skip
    ov = parser.add_argument_group("OpenVINO options")
    ov.add_argument("--device", help="CPU (default), GPU, NPU, AUTO, ...")
    ov.add_argument("--hint", choices=["latency", "throughput"],
                    help="performance hint (default latency)")  # fmt: skip
    ov.add_argument("--threads", type=int, help="CPU inference threads (default: OpenVINO's)")
    ov.add_argument("--num-streams", type=int, help="CPU streams (default: from the hint)")
    ov.add_argument("--cache-dir", type=Path, help="OpenVINO model cache directory (default off)")
    ov.add_argument("--inference-precision", choices=["f32", "bf16", "f16", "auto"],
                    help="float math precision (default f32, so drift is measured honestly)")  # fmt: skip
    ov.add_argument("--compress-fp16", action="store_true", default=None,
                    help="store IR weights as FP16 (default off for float baselines)")  # fmt: skip
    ov.add_argument("--int8-mode", choices=["qdq", "nncf"],
                    help="INT8 from a QDQ ONNX (default, measured faster at equal accuracy) or by "
                    "NNCF on the float IR (implied by --calib)")  # fmt: skip
    ov.add_argument("--calib", metavar="DATA",
                    help="calibration data: makes a float model INT8 with NNCF (.npz, .npy, "
                    "folder, ...)")  # fmt: skip
    ov.add_argument("--calib-limit", type=int, metavar="N",
                    help="use at most N calibration samples (default: NNCF's subset, 300)")  # fmt: skip
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
    parser.set_defaults(func=run)
    return parser


def _openvino_overrides(args: argparse.Namespace) -> dict:
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


def _tensorrt_overrides(args: argparse.Namespace) -> dict:
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


def run(args: argparse.Namespace) -> int:
    from nnship import api
    from nnship.backends import canonical_backend

    backend = canonical_backend(args.backend)
    options: dict = {}
    if backend == "openvino":
        options = _openvino_overrides(args)
    elif backend == "tensorrt":
        options = _tensorrt_overrides(args)
    else:
        options = {"threads": args.threads}
    artifact = api.compile(
        args.model,
        args.output,
        backend=backend,
        precision=None if args.precision == "auto" else args.precision,
        options=options,
        calib_data=args.calib if backend == "openvino" else None,
        calib_limit=args.calib_limit,
        exclude_names=args.exclude if backend == "openvino" else (),
        exclude_op_types=args.exclude_op_type if backend == "openvino" else (),
    )
    _print_artifact(artifact)
    if args.json:
        from nnship.core.fileio import write_json_atomic

        write_json_atomic(args.json, artifact.to_dict())
    return 0


def _print_artifact(artifact) -> None:
    meta = artifact.metadata
    print(f"{artifact.label} for {artifact.device}: {artifact.path}")
    if artifact.backend == "openvino":
        mode = meta.get("int8_mode")
        print(f"  compiled on {artifact.device} in {meta.get('compile_s', 0):.2f} s"
              + (f"; INT8 via {mode}" if mode else ""))  # fmt: skip
    if artifact.backend == "tensorrt":
        if meta.get("engine_built"):
            print(
                f"  engine built with TensorRT {meta.get('tensorrt_version')} on {meta.get('gpu')}"
            )
        else:
            print(f"  no engine built here: {meta.get('engine_skipped_reason')}")
            print("  build it on the target device with the kit's build_trtexec.sh or:")
        print(f"  {meta.get('trtexec')}")
        profiles = meta.get("build_spec", {}).get("profiles", [])
        for i, profile in enumerate(profiles):
            for name, rng in profile.items():
                print(f"  profile {i} {name}: min {rng['min']} opt {rng['opt']} max {rng['max']}")
    for path in artifact.files:
        print(f"  {path}")
    if meta.get("options") and artifact.backend == "openvino":
        print("  options: " + json.dumps(meta["options"], sort_keys=True))
