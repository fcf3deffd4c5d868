"""INT8 and pruning on the demo model, timed side by side: ONNX Runtime and OpenVINO, FP32 and
INT8 of a finished `nnship demo` build, plus the unpruned float model exported to ONNX, all in
one interleaved pass (batch 1, 2 threads; `bench/_timing.py`), printed as ratios.

The report's own latency column times each artifact on its own, one after the other; on a
shared machine the ratios from this pass are the ones to quote.

    .venv/bin/nnship demo                                # first: builds build/demo
    .venv/bin/python bench/demo.py --build build/demo    # ~1 min
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from _timing import interleaved_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=Path("build/demo"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from nnship.backends.compile import open_artifact
    from nnship.core.environment import capture_environment
    from nnship.exporter import export_onnx
    from nnship.sources.models import load_model

    report = json.loads((args.build / "report" / "report.json").read_text())
    model = report["extra"]["build"]["recipe"]["model"]
    spec = model["inputs"][0]
    loaded = load_model(
        model["source"],
        inputs=[spec],
        factory_kwargs=model.get("factory_kwargs") or {},
        weights=model["weights"],
    )
    shape = loaded.input_specs[0].shape
    x = {loaded.input_specs[0].name: np.random.default_rng(0).standard_normal(shape).astype("f4")}

    paths: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        unpruned = Path(tmp) / "unpruned.fp32.onnx"
        export_onnx(loaded, unpruned)
        paths["onnxruntime/fp32 unpruned"] = unpruned
        for row in report["rows"]:
            if row.get("path"):
                paths[row["label"]] = Path(row["path"])
        # the model file(s): .onnx, or OpenVINO's .xml + .bin
        sizes = {
            label: sum(f.stat().st_size for f in (path, path.with_suffix(".bin")) if f.is_file())
            for label, path in paths.items()
        }
        runners = {}
        for label, path in paths.items():
            options = {"threads": args.threads} if label.startswith("onnxruntime") else {}
            backend = "onnxruntime" if label.startswith("onnxruntime") else None
            runners[label] = open_artifact(path, backend=backend, options=options)
        calls = {label: (lambda r=r: r.run(x, check=False)) for label, r in runners.items()}
        ms = interleaved_latency(
            calls, rounds=args.rounds, runs=args.runs, warmup=5, initial_warmup=20
        )
        for runner in runners.values():
            runner.close()
    env = capture_environment(args.threads)
    print(f"CPU: {env.summary()}; {env.capabilities()}")
    print(f"batch 1, {args.threads} threads, {args.rounds} rounds x {args.runs} runs, interleaved")
    print("| artifact | size MB | p50 ms | vs ORT FP32 (pruned) |")
    print("| --- | --- | --- | --- |")
    base = ms.get("onnxruntime/fp32", float("nan"))
    for label, value in ms.items():
        print(f"| {label} | {sizes[label] / 1e6:.3f} | {value:.3f} | {value / base:.2f} |")
    for backend in ("onnxruntime", "openvino"):
        if f"{backend}/int8" in ms and f"{backend}/fp32" in ms:
            ratio = ms[f"{backend}/int8"] / ms[f"{backend}/fp32"]
            print(f"{backend}: INT8 / FP32 latency = {ratio:.2f}")
    print(f"pruning (ORT FP32 pruned / unpruned) = {base / ms['onnxruntime/fp32 unpruned']:.2f}")


if __name__ == "__main__":
    main()
