"""Cross-check nnship's latency figure against a raw ONNX Runtime loop (and onnxruntime_perf_test).

Variants, interleaved round by round in one process so machine drift hits them alike:
- nnship: `measure_latency` on an `OnnxRuntimeRunner` (stable warm-up, `run(check=False)`,
  perf_counter_ns around the call only, GC off).
- raw: a minimal `InferenceSession.run` loop on its own session with identical settings
  (same threads, sequential execution, spinning off, all graph optimizations), same warm-up
  count and run count, same input arrays.
- perf_test: `onnxruntime_perf_test -m times` when that binary is on PATH (pip's onnxruntime
  does not ship it; then it is skipped).
Prints per-round p50/mean and the nnship/raw ratios (target: within 5%, i.e. 0.95..1.05).

Usage: .venv/bin/python bench/latency_crosscheck.py [--rounds 5] [--runs 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def build_model(path: Path, seed: int = 0) -> None:
    """A small CNN (conv-relu x2, global pool, classifier) on 1x3x96x96: ~50M MACs, a few ms on one core."""
    rng = np.random.default_rng(seed)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((0.1 * rng.standard_normal(shape)).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "crosscheck",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 96, 96])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 10])],
        [
            init("w1", 32, 3, 3, 3),
            init("b1", 32),
            init("w2", 64, 32, 3, 3),
            init("b2", 64),
            init("w3", 10, 64),
            init("b3", 10),
        ],  # fmt: skip
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def raw_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def raw_loop(session, feeds: dict, warmup: int, runs: int) -> np.ndarray:
    for _ in range(warmup):
        session.run(None, feeds)
    out = np.empty(runs, dtype=np.int64)
    gc.collect()
    gc.disable()
    try:
        for i in range(runs):
            start = time.perf_counter_ns()
            session.run(None, feeds)
            out[i] = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return out / 1e6


def perf_test(path: Path, threads: int, runs: int) -> float | None:
    """Average ms from onnxruntime_perf_test, or None when it is not installed."""
    binary = shutil.which("onnxruntime_perf_test")
    if binary is None:
        return None
    cmd = [binary, "-m", "times", "-r", str(runs), "-x", str(threads), "-e", "cpu", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    match = re.search(r"Average inference time cost:\s*([\d.]+)\s*ms", out)
    return float(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from nnship.backends.onnxruntime import OnnxRuntimeRunner
    from nnship.metrics.latency import measure_latency
    from nnship.validate.config import LatencyConfig

    tmp = Path(tempfile.mkdtemp(prefix="nnship-crosscheck-"))
    model = tmp / "model.onnx"
    build_model(model)
    batch = {"x": np.random.default_rng(1).standard_normal((1, 3, 96, 96)).astype(np.float32)}
    runner = OnnxRuntimeRunner(model, threads=args.threads)
    session = raw_session(model, args.threads)
    # identical warm-up for both: a fixed count (the stability criterion is nnship's own)
    warm = 50
    config = LatencyConfig(runs=args.runs, min_warmup_runs=warm, max_warmup_runs=warm)
    p50_ratios, mean_ratios = [], []
    print(f"model {model}, threads {args.threads}, {args.runs} runs x {args.rounds} rounds")
    for r in range(args.rounds):
        order = ["nnship", "raw"] if r % 2 == 0 else ["raw", "nnship"]
        results = {}
        for variant in order:
            if variant == "nnship":
                stats = measure_latency(runner, batch, config)
                results[variant] = (stats.p50_ms, stats.mean_ms)
            else:
                ms = raw_loop(session, batch, warm, args.runs)
                results[variant] = (float(np.median(ms)), float(ms.mean()))
        p50_ratios.append(results["nnship"][0] / results["raw"][0])
        mean_ratios.append(results["nnship"][1] / results["raw"][1])
        print(
            f"round {r}: nnship p50 {results['nnship'][0]:.4f} ms mean {results['nnship'][1]:.4f}"
            f" | raw p50 {results['raw'][0]:.4f} mean {results['raw'][1]:.4f}"
            f" | ratio p50 {p50_ratios[-1]:.3f} mean {mean_ratios[-1]:.3f}"
        )
    p50 = statistics.median(p50_ratios)
    mean = statistics.median(mean_ratios)
    verdict = "within 5%" if abs(p50 - 1) <= 0.05 else "OUTSIDE 5%"
    print(f"median ratio nnship/raw: p50 {p50:.3f}, mean {mean:.3f} ({verdict})")
    avg = perf_test(model, args.threads, args.runs)
    if avg is None:
        print("onnxruntime_perf_test: not installed (pip's onnxruntime does not ship it); skipped")
    else:
        stats = measure_latency(runner, batch, config)
        print(
            f"onnxruntime_perf_test mean {avg:.4f} ms; nnship/perf_test {stats.mean_ms / avg:.3f}"
        )
    runner.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
