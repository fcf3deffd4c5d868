"""Exporter benchmark: dynamo vs torchscript on the reference models, in one process.

For resnet_small, mobilenet_small (with and without squeeze-and-excitation) and encoder_small
(int64 input_ids + attention_mask), exported through `nnship.exporter.export_onnx` with each
exporter (variants interleaved, each repeated): success, export seconds (median), ONNX nodes,
size, max abs error against torch, and the dynamo/torchscript time ratio. Also the ONNX Runtime
latency of both exports (batch 1, 2 threads, interleaved), since the graphs differ
(GlobalAveragePool vs ReduceMean, Gemm placement, shape subgraphs).

Run: .venv/bin/python bench/export.py [--repeats N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from nnship.backends.onnxruntime import OnnxRuntimeRunner
from nnship.core import TensorSpec
from nnship.core.errors import ExportError
from nnship.exporter import ExportConfig, export_onnx
from nnship.models import encoder_small, mobilenet_small, resnet_small

EXPORTERS = ("dynamo", "torchscript")


def _models() -> dict[str, tuple[torch.nn.Module, list[TensorSpec], dict[str, np.ndarray]]]:
    torch.manual_seed(0)
    image = [TensorSpec("x", (1, 3, 32, 32))]
    tokens = [
        TensorSpec("input_ids", (1, 32), "int64"),
        TensorSpec("attention_mask", (1, 32), "int64"),
    ]
    mask = np.ones((1, 32), np.int64)
    mask[:, 24:] = 0
    ids = np.random.default_rng(0).integers(0, 1000, (1, 32)).astype(np.int64)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    return {
        "resnet_small": (resnet_small(), image, {"x": x}),
        "mobilenet_small": (mobilenet_small(), image, {"x": x}),
        "mobilenet_small+se": (mobilenet_small(squeeze_excite=True), image, {"x": x}),
        "encoder_small": (
            encoder_small(),
            tokens,
            {"input_ids": ids, "attention_mask": mask},
        ),
    }


def _latency_ms(runner: OnnxRuntimeRunner, batch: dict[str, np.ndarray], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(batch, check=False)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="exports per variant (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (module, specs, examples) in _models().items():
            rows: dict[str, Any] = {e: {"seconds": [], "error": None} for e in EXPORTERS}
            paths: dict[str, Path] = {}
            for _ in range(args.repeats):
                for exporter in EXPORTERS:  # interleaved: load drift hits both alike
                    row = rows[exporter]
                    if row["error"]:
                        continue
                    out = Path(tmp) / f"{name}.{exporter}.onnx"
                    start = time.perf_counter()
                    try:
                        result = export_onnx(
                            module,
                            out,
                            input_specs=specs,
                            example_inputs=examples,
                            options=ExportConfig(exporter=exporter),
                        )
                    except ExportError as exc:
                        row["error"] = str(exc)[:200]
                        continue
                    row["seconds"].append(time.perf_counter() - start)
                    row.update(
                        max_abs_error=result.max_abs_error,
                        size_kb=result.size_bytes / 1e3,
                        nodes=len(onnx.load(str(out)).graph.node),
                        simplified=result.simplified,
                    )
                    paths[exporter] = out
            runners = {e: OnnxRuntimeRunner(p, threads=2) for e, p in paths.items()}
            lat: dict[str, list[float]] = {e: [] for e in runners}
            for _ in range(20):
                for e, runner in runners.items():
                    lat[e] += _latency_ms(runner, examples, 10)
            for e in EXPORTERS:
                row = rows[e]
                row["export_s"] = statistics.median(row.pop("seconds")) if e in paths else None
                row["ort_p50_ms"] = statistics.median(lat[e]) if e in lat else None
            results[name] = rows
            _print(name, rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _print(name: str, rows: dict[str, Any]) -> None:
    print(f"\n{name}")
    for e, row in rows.items():
        if row["error"]:
            print(f"  {e:12s} FAILED: {row['error']}")
            continue
        print(
            f"  {e:12s} export {row['export_s']:.2f} s  nodes {row['nodes']:4d}  "
            f"size {row['size_kb']:.0f} kB  max err {row['max_abs_error']:.2g}  "
            f"ORT p50 {row['ort_p50_ms']:.3f} ms"
        )
    d, t = rows["dynamo"], rows["torchscript"]
    if not d["error"] and not t["error"]:
        print(
            f"  ratio dynamo/torchscript: export time {d['export_s'] / t['export_s']:.1f}x, "
            f"ORT latency {d['ort_p50_ms'] / t['ort_p50_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
