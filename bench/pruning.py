"""Pruning + distillation benchmark on the reference CNNs trained on real data (digits).

Prints, for each model and ratio: parameter and FLOP ratios, ONNX Runtime FP32 latency ratio vs
the unpruned model (batch 1, 2 threads, runs interleaved in one process), test accuracy of the
float model, after pruning alone, after distillation, and after INT8 quantization (QDQ, ONNX
Runtime profile) of the float and of the pruned+distilled model.

Targets (issue 5): latency ratio <= 0.6 at ratio 0.5 on the ResNet-style model; accuracy after
distillation within 1.0 point of the float model at ratio 0.5.

    .venv/bin/python bench/pruning.py                 # both models, ratios 0.3 and 0.5
    .venv/bin/python bench/pruning.py --models resnet --epochs 3 --distill-epochs 2   # quicker
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nnship.compress import DistillConfig, PruneConfig, distill, prune
from nnship.core import TensorSpec
from nnship.datasets import Split, digits_images
from nnship.models import mobilenet_small, resnet_small
from nnship.models.train import accuracy, train_classifier
from nnship.sources import ArrayData


def _export(module: torch.nn.Module, path: Path, size: int) -> Path:
    from nnship.exporter import export_onnx

    spec = TensorSpec("x", (1, 1, size, size))
    example = {"x": np.zeros((1, 1, size, size), np.float32)}
    export_onnx(module, path, input_specs=[spec], example_inputs=example)
    return path


def _ort_accuracy(path: Path, test: Split) -> float:
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path, threads=2) as runner:
        correct = 0
        for start in range(0, len(test), 128):
            batch = {"x": test.inputs["x"][start : start + 128]}
            logits = next(iter(runner.run(batch).values()))
            correct += int((logits.argmax(-1) == test.labels[start : start + 128]).sum())
    return correct / len(test)


def _latencies(paths: dict[str, Path], size: int, rounds: int) -> dict[str, float]:
    """Median ms per model at batch 1, 2 threads; one run of each model per round (interleaved)."""
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    x = {"x": np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32)}
    runners = {k: OnnxRuntimeRunner(p, threads=2) for k, p in paths.items()}
    samples: dict[str, list[float]] = {k: [] for k in paths}
    for runner in runners.values():
        for _ in range(10):
            runner.run(x, check=False)
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.run(x, check=False)
            samples[name].append((time.perf_counter() - start) * 1e3)
    for runner in runners.values():
        runner.close()
    return {k: float(np.median(v)) for k, v in samples.items()}


def _int8(path: Path, out: Path, calib: ArrayData, test: Split) -> float | None:
    try:
        from nnship.quantize import make_config, quantize
    except ImportError:
        return None
    quantize(path, out, make_config(precisions=["int8"], profile="onnxruntime"), calib_data=calib)
    return _ort_accuracy(out, test)


def run_model(name, factory, args, train: Split, test: Split, work: Path) -> list[dict]:
    t0 = time.time()
    model = train_classifier(factory(), train, epochs=args.epochs, seed=0)
    acc_float = accuracy(model, test)
    print(f"[{name}] trained {args.epochs} epochs in {time.time() - t0:.0f}s: test accuracy {acc_float:.2%}", flush=True)  # fmt: skip
    unlabeled = ArrayData({"x": train.inputs["x"]})
    calib = ArrayData({"x": train.inputs["x"][:128]})
    example = {"x": torch.from_numpy(train.inputs["x"][:1])}
    paths = {"float": _export(model, work / f"{name}.float.onnx", args.size)}
    int8_float = _int8(paths["float"], work / f"{name}.float.int8.onnx", calib, test)
    rows = []
    for ratio in args.ratios:
        protect = None if args.protect is None else [p for p in args.protect if p]
        config = PruneConfig(ratio=ratio, importance=args.importance, protect=protect)
        result = prune(model, example, config)
        acc_pruned = accuracy(result.module, test)
        t0 = time.time()
        config = DistillConfig(epochs=args.distill_epochs, lr=args.lr, patience=None)
        student = distill(model, result.module, unlabeled, config).student
        acc_distilled = accuracy(student, test)
        print(f"[{name}] ratio {ratio}: distilled {args.distill_epochs} epochs in {time.time() - t0:.0f}s", flush=True)  # fmt: skip
        key = f"r{ratio}"
        paths[key] = _export(student, work / f"{name}.{key}.onnx", args.size)
        int8 = _int8(paths[key], work / f"{name}.{key}.int8.onnx", calib, test)
        rows.append(
            {
                "model": name,
                "ratio": ratio,
                "param_ratio": result.param_ratio,
                "flops_ratio": result.flops_ratio,
                "acc_float": acc_float,
                "acc_pruned": acc_pruned,
                "acc_distilled": acc_distilled,
                "acc_float_int8": int8_float,
                "acc_distilled_int8": int8,
                "onnx_kb": paths[key].stat().st_size / 1e3,
                "onnx_kb_float": paths["float"].stat().st_size / 1e3,
            }
        )
    ms = _latencies(paths, args.size, args.rounds)
    for row in rows:
        row["latency_ms_float"] = ms["float"]
        row["latency_ms"] = ms[f"r{row['ratio']}"]
        row["latency_ratio"] = row["latency_ms"] / ms["float"]
    return rows


def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["resnet", "mobilenet"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5])
    parser.add_argument("--size", type=int, default=32, help="digit image size (default 32)")
    parser.add_argument("--epochs", type=int, default=6, help="float training epochs")
    parser.add_argument("--distill-epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3, help="distillation learning rate")
    parser.add_argument("--importance", default="l1")
    parser.add_argument("--protect", nargs="*", default=None,
                        help="layers to protect (default: first conv and head; no names = none)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=300, help="interleaved latency rounds")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = digits_images(size=args.size, seed=0)
    factories = {
        "resnet": lambda: resnet_small(width=16, in_channels=1),
        "mobilenet": lambda: mobilenet_small(width_mult=0.5, in_channels=1),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += run_model(name, factories[name], args, train, test, Path(tmp))
    print()
    print("model      ratio  params  FLOPs  ORT-lat  acc float  pruned  distilled  int8(float)  int8(distilled)")  # fmt: skip
    for r in rows:
        print(
            f"{r['model']:<10} {r['ratio']:>5.2f}  {r['param_ratio']:6.3f} {r['flops_ratio']:6.3f}"
            f"  {r['latency_ratio']:7.3f}  {_pct(r['acc_float']):>9}  {_pct(r['acc_pruned']):>6}"
            f"  {_pct(r['acc_distilled']):>9}  {_pct(r['acc_float_int8']):>11}"
            f"  {_pct(r['acc_distilled_int8']):>15}"
        )
    print("(ratios are pruned / unpruned; ORT-lat: ONNX Runtime FP32 batch 1, 2 threads, interleaved median;"
          " accuracy in % on the digits test split)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
