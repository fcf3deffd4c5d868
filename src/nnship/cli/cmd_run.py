"""`nnship run DIST`: run a bundle on this machine, on arrays or on an image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run",
        help="run a bundle (from `nnship bundle`) on arrays or an image",
        description=(
            "Load a bundle through nnship.runtime (every file's SHA-256 checked first), pick "
            "the artifact (--target auto: OpenVINO when installed, else ONNX Runtime), run it "
            "on --input arrays or on an --image with the bundle's declared preprocessing, and "
            "print the outputs (top-k classes with labels when the bundle declares them)."
        ),
        epilog="Exit codes: 0 ran, 2 bad bundle or input (the file, field or tensor is named).",
    )
    parser.add_argument("bundle", type=Path, metavar="DIST", help="the bundle folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, metavar="SAMPLE.npy|.npz",
                        help="input arrays: .npy for a one-input model, .npz keyed by input name")  # fmt: skip
    source.add_argument("--image", type=Path, metavar="IMAGE",
                        help="an image file (JPEG, PNG, ...), preprocessed as the bundle declares")  # fmt: skip
    parser.add_argument("--target", default="auto",
                        help="auto (default), a backend (openvino, onnxruntime) or an artifact id "
                        "(openvino/int8)")  # fmt: skip
    parser.add_argument(
        "--device", help="runtime device: OpenVINO CPU/GPU/NPU/AUTO, ONNX Runtime CPU/CUDA"
    )
    parser.add_argument("--threads", type=int, help="inference threads (default: the runtime's)")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT.npz", help="write the outputs here"
    )
    parser.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="classes shown per sample (default 5)"
    )
    parser.add_argument("--json", nargs="?", const="-", metavar="OUT.json",
                        help="the result as JSON: on stdout, or into OUT.json")  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def _summary(name, value) -> str:
    flat = value.reshape(-1)
    head = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat[:6].tolist())
    more = ", ..." if flat.size > 6 else ""
    return f"  {name}: {list(value.shape)} {value.dtype} [{head}{more}]"


def run(args: argparse.Namespace) -> int:
    from nnship import api

    result = api.run_bundle(
        args.bundle, inputs=args.input, image=args.image, target=args.target,
        device=args.device, threads=args.threads, output=args.output, top_k=args.top_k,
    )  # fmt: skip
    if args.json == "-":
        json.dump(result.to_dict(), sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    print(f"{result.name}: {result.target} on {result.device} ({result.source})")
    for name, value in result.outputs.items():
        print(_summary(name, value))
    for top in result.top_k:
        ranked = ", ".join(
            f"{label if label is not None else index} {score:.4g}"
            for index, label, score in top.classes
        )
        print(f"  {top.output}[{top.sample}] top-{len(top.classes)}: {ranked}")
    if result.output_path:
        print(f"wrote {result.output_path}")
    if args.json:
        from nnship.core.fileio import write_json_atomic

        write_json_atomic(args.json, result.to_dict())
    return 0
