"""Pruning + distillation benchmark on the reference CNNs trained on real data (digits).

For each model and ratio: parameter and FLOP ratios; ONNX Runtime latency ratios vs the unpruned
model (FP32 and INT8, batch 1, 2 threads; all variants interleaved in one process, the median of
`--runs` runs per variant per round, the reported ratio is the median over `--rounds` rounds
with its inter-quartile range); test accuracy of the float model, after pruning alone (without
and with BatchNorm recalibration), after distillation, and after INT8 quantization (QDQ, ONNX
Runtime profile) of the float and of the pruned+distilled model. It also checks that every
pruned channel count is a multiple of `--round-to` and that ONNX Runtime's optimized graph of
the pruned model holds exactly the ops of the unpruned one's (no Slice/Gather left by pruning).

Configurations (`--config`):
- `small`: digits at 32x32, 1 channel; resnet_small(width=16) (~12M MACs), mobilenet_small(0.5).
  Latency there is dominated by per-op overhead at batch 1.
- `reference`: digits upsampled to 64x64, 3 channels; resnet_small(width=32) (~200M MACs),
  mobilenet_small(1.0): compute-bound, closer to a deployment-size model.

Targets (issue 5), on the ResNet-style model at ratio 0.5: ORT FP32 latency ratio <= 0.6; test
accuracy after distillation within 1.0 point of the float model.

    .venv/bin/python bench/pruning.py                                  # small, both models
    .venv/bin/python bench/pruning.py --config reference --models resnet
    .venv/bin/python bench/pruning.py --config reference --latency-only  # untrained, shapes only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch

from nnship.compress import DistillConfig, PruneConfig, distill, prune
from nnship.core import TensorSpec
from nnship.datasets import Split, digits_images
from nnship.models import mobilenet_small, resnet_small
from nnship.models.train import accuracy, train_classifier
from nnship.sources import ArrayData

CONFIGS = {
    "small": {
        "size": 32,
        "channels": 1,
        "resnet": lambda c: resnet_small(width=16, in_channels=c),
        "mobilenet": lambda c: mobilenet_small(width_mult=0.5, in_channels=c),
    },
    "reference": {
        "size": 64,
        "channels": 3,
        "resnet": lambda c: resnet_small(width=32, in_channels=c),
        "mobilenet": lambda c: mobilenet_small(width_mult=1.0, in_channels=c),
    },
}
LEFTOVER_OPS = {"Slice", "Gather", "GatherElements", "Concat", "Reshape", "Shape", "Expand"}


def _export(module: torch.nn.Module, path: Path, shape: tuple[int, ...]) -> Path:
    from nnship.exporter import export_onnx

    spec = TensorSpec("x", shape)
    export_onnx(module, path, input_specs=[spec], example_inputs={"x": np.zeros(shape, "f4")})
    return path


def _ort_accuracy(path: Path, test: Split) -> float:
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path, threads=2) as runner:
        correct = 0
        for start in range(0, len(test), 128):
            logits = next(iter(runner.run({"x": test.inputs["x"][start : start + 128]}).values()))
            correct += int((logits.argmax(-1) == test.labels[start : start + 128]).sum())
    return correct / len(test)


def _int8(path: Path, calib: ArrayData) -> Path:
    from nnship.quantize import make_config, quantize

    out = path.with_suffix(".int8.onnx")
    quantize(path, out, make_config(precisions=["int8"], profile="onnxruntime"), calib_data=calib)
    return out


def _optimized_ops(path: Path) -> Counter:
    """Op types of ONNX Runtime's optimized graph ("all" level, CPU) of `path`."""
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    out = path.with_suffix(".ort.onnx")
    OnnxRuntimeRunner(path, threads=2, optimized_model_path=out).close()
    return Counter(n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node)


def _latencies(paths: dict[str, Path], shape, rounds: int, runs: int) -> dict[str, list[float]]:
    """Per variant, the median ms of `runs` batch-1 runs in each of `rounds` rounds; every round
    runs all variants, in a rotating order, so load drift hits them alike."""
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    x = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    runners = {k: OnnxRuntimeRunner(p, threads=2) for k, p in paths.items()}
    for runner in runners.values():
        for _ in range(10):
            runner.run(x, check=False)
    names = list(runners)
    per_round: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                runners[name].run(x, check=False)
                times.append((time.perf_counter() - start) * 1e3)
            per_round[name].append(float(np.median(times)))
    for runner in runners.values():
        runner.close()
    return per_round


def _ratio(per_round: dict[str, list[float]], num: str, den: str) -> dict[str, float]:
    ratios = np.array(per_round[num]) / np.array(per_round[den])
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return {"median": float(q50), "q25": float(q25), "q75": float(q75)}


def _teacher(name: str, args, train: Split) -> torch.nn.Module:
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)  # the initial weights too: same command, same teacher
    model = cfg[name](cfg["channels"])
    if args.latency_only:
        return model.eval()
    cache = args.cache / f"{args.config}-{name}-{args.epochs}ep.pt" if args.cache else None
    if cache is not None and cache.is_file():
        model.load_state_dict(torch.load(cache, weights_only=True))
        return model.eval()
    t0 = time.time()
    model = train_classifier(model, train, epochs=args.epochs, seed=0)
    print(f"[{name}] trained {args.epochs} epochs in {time.time() - t0:.0f}s", flush=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    return model


def _distill_config(args) -> DistillConfig:
    overrides = {"epochs": args.distill_epochs, "lr": args.lr, "label_weight": args.label_weight}
    return DistillConfig(**{k: v for k, v in overrides.items() if v is not None})


def _graph_checks(row: dict, result, ops: dict[str, Counter], key: str, round_to: int) -> None:
    row["channels_after"] = [g.channels_after for g in result.groups]
    row["channels_ok"] = all(c % round_to == 0 for c in row["channels_after"])
    row["channels_mod16"] = all(c % 16 == 0 for c in row["channels_after"])
    extra = ops[key] - ops["float"]
    row["extra_ops"] = dict(extra)
    row["leftover_ops"] = sorted(set(extra) & LEFTOVER_OPS)


def run_model(name: str, args, train: Split, test: Split, work: Path) -> list[dict]:
    cfg = CONFIGS[args.config]
    shape = (1, cfg["channels"], cfg["size"], cfg["size"])
    model = _teacher(name, args, train)
    trained = not args.latency_only
    acc_float = accuracy(model, test) if trained else None
    unlabeled = ArrayData({"x": train.inputs["x"]})
    labeled = ArrayData({"x": train.inputs["x"]}, train.labels)
    calib = ArrayData({"x": train.inputs["x"][:128]})
    example = {"x": torch.from_numpy(train.inputs["x"][:1])}
    paths = {"float": _export(model, work / f"{name}.float.onnx", shape)}
    ops = {"float": _optimized_ops(paths["float"])}
    if trained:
        paths["float.int8"] = _int8(paths["float"], calib)
    acc_float_int8 = _ort_accuracy(paths["float.int8"], test) if trained else None
    rows = []
    for ratio in args.ratios:
        protect = None if args.protect is None else [p for p in args.protect if p]
        config = PruneConfig(ratio=ratio, importance=args.importance, protect=protect,
                             round_to=args.round_to)  # fmt: skip
        result = prune(model, example, config, data=unlabeled)
        key = f"r{ratio}"
        row = {"model": name, "config": args.config, "ratio": ratio, "acc_float": acc_float,
               "param_ratio": result.param_ratio, "flops_ratio": result.flops_ratio,
               "flops_float": result.flops_before, "acc_float_int8": acc_float_int8}  # fmt: skip
        student = result.module
        if trained:
            raw = prune(model, example, config).module  # no data: BatchNorm statistics stale
            row["acc_pruned_raw"] = accuracy(raw, test)
            row["acc_pruned"] = accuracy(result.module, test)
            t0 = time.time()
            distilled = distill(model, result.module, labeled, _distill_config(args))
            student = distilled.student
            row["acc_distilled"] = accuracy(student, test)
            row["teacher_val_accuracy"] = distilled.teacher_accuracy
            row["distill_epochs"] = distilled.config.epochs
            row["best_epoch"] = distilled.best_epoch
            row["distill_s"] = time.time() - t0
            print(f"[{name}] ratio {ratio}: distilled {distilled.config.epochs} epochs in "
                  f"{row['distill_s']:.0f}s, test accuracy {row['acc_distilled']:.2%}", flush=True)  # fmt: skip
        paths[key] = _export(student, work / f"{name}.{key}.onnx", shape)
        ops[key] = _optimized_ops(paths[key])
        _graph_checks(row, result, ops, key, args.round_to)
        if trained:
            paths[f"{key}.int8"] = _int8(paths[key], calib)
            row["acc_distilled_int8"] = _ort_accuracy(paths[f"{key}.int8"], test)
        rows.append(row)
    per_round = _latencies(paths, shape, args.rounds, args.runs)
    for row in rows:
        key = f"r{row['ratio']}"
        row["latency_ms_float"] = float(np.median(per_round["float"]))
        row["latency_ms"] = float(np.median(per_round[key]))
        row["latency_ratio"] = _ratio(per_round, key, "float")
        if trained:
            row["latency_ratio_int8"] = _ratio(per_round, f"{key}.int8", "float.int8")
    return rows


def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:6.2f}"


def _lat(r: dict | None) -> str:
    return "      n/a       " if r is None else f"{r['median']:.3f} [{r['q25']:.2f}-{r['q75']:.2f}]"


def print_table(rows: list[dict]) -> None:
    print()
    print("model      ratio params  FLOPs  ORT FP32 lat [IQR]  ORT INT8 lat [IQR]  "
          "float  pruned(raw) pruned(BN) distilled  int8(float) int8(distilled)")  # fmt: skip
    for r in rows:
        print(
            f"{r['model']:<10} {r['ratio']:>4.2f}  {r['param_ratio']:5.3f}  {r['flops_ratio']:5.3f}"
            f"  {_lat(r['latency_ratio'])}  {_lat(r.get('latency_ratio_int8'))}"
            f"  {_pct(r['acc_float'])}  {_pct(r.get('acc_pruned_raw')):>11}"
            f"  {_pct(r.get('acc_pruned')):>9}  {_pct(r.get('acc_distilled')):>9}"
            f"  {_pct(r['acc_float_int8']):>11}  {_pct(r.get('acc_distilled_int8')):>15}"
        )
    print("(ratios are pruned / unpruned, latency at batch 1 with 2 threads, median over rounds;"
          " accuracy in % on the digits test split)")  # fmt: skip
    for r in rows:
        ms = f"{r['latency_ms_float']:.3f} -> {r['latency_ms']:.3f} ms"
        print(f"{r['model']} {r['ratio']}: {r['flops_float'] / 2e6:.0f}M MACs unpruned, FP32 {ms}; "
              f"kept channels {r['channels_after']} (multiples of round_to: {r['channels_ok']}, "
              f"of 16: {r['channels_mod16']}); ops added in ORT's optimized graph: "
              f"{r['extra_ops'] or 'none'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--models", nargs="+", default=["resnet", "mobilenet"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5])
    parser.add_argument("--epochs", type=int, default=6, help="float training epochs (default 6)")
    parser.add_argument("--distill-epochs", type=int, help="default: DistillConfig's")
    parser.add_argument("--lr", type=float, help="distillation peak lr (default: DistillConfig's)")
    parser.add_argument("--label-weight", type=float, help="default: DistillConfig's")
    parser.add_argument("--importance", default="l1")
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--protect", nargs="*", default=None,
                        help="layers to protect (default: first conv and head; no names = none)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=15, help="interleaved latency rounds")
    parser.add_argument("--runs", type=int, default=40, help="runs per variant per round")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip training and distillation: shapes, graphs and latency only")  # fmt: skip
    parser.add_argument("--cache", type=Path, help="folder caching the trained float models")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = CONFIGS[args.config]
    train, test = digits_images(size=cfg["size"], channels=cfg["channels"], seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += run_model(name, args, train, test, Path(tmp))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
