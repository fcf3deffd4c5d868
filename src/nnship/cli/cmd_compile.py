"""`nnship compile`: lower an ONNX model to an ONNX Runtime, OpenVINO or TensorRT artifact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnship.cli.options import BackendCompileArgs, JsonArgs

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

BACKEND_OPTIONS = BackendCompileArgs()
JSON = JsonArgs("also write the artifact description as JSON")


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
    JSON.add_to(parser)
    BACKEND_OPTIONS.add_to(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from nnship import api

    artifact = api.compile(
        args.model,
        args.output,
        precision=None if args.precision == "auto" else args.precision,
        **BACKEND_OPTIONS.api_kwargs(args, args.backend),
    )
    _print_artifact(artifact)
    JSON.write(args, artifact.to_dict())
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
