"""nnship INT8 (every method x every profile, plus the default "auto" that picks a method per
model), FP16 and dynamic INT8 vs ONNX Runtime's quantize_static on reference models trained on
real data, side by side in one run.

Prints per model: top-1 agreement with float, accuracy against labels, cosine and max-abs of
the first output, size, ONNX Runtime latency ratio to FP32 (batch 1, 2 threads, variants
interleaved in one process) and, per range method, the peak memory of calibration measured in
a fresh subprocess against a plain inference run over the same data.

    .venv/bin/python bench/quantization.py [--quick] [--models resnet,mobilenet,encoder]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ort_anchor import ort_quantize_static, single_samples  # noqa: E402
from _timing import interleaved_latency  # noqa: E402

METHODS = ("minmax", "percentile", "entropy", "mse")
PROFILES = ("onnxruntime", "openvino", "tensorrt")
ORT_METHODS = ("MinMax", "Entropy", "Percentile")


@dataclass
class Case:
    name: str
    onnx: Path
    calib: dict[str, np.ndarray]
    eval: dict[str, np.ndarray]
    labels: np.ndarray | None
    float_accuracy: float | None


# -- training and export ---------------------------------------------------------------------
def _export(module, example: dict, path: Path) -> Path:  # noqa: ANN001
    import torch

    try:
        from nnship.exporter import export_onnx

        export_onnx(module, path, example_inputs=example)
    except ImportError:
        names = list(example)
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(v) for v in example.values()),
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_shapes={n: {0: torch.export.Dim("batch")} for n in names},
            dynamo=True,
        )
    return path


def build_cases(workdir: Path, quick: bool, wanted: set[str]) -> list[Case]:
    from nnship.datasets import digits_images, digits_tokens
    from nnship.models import encoder_small, mobilenet_small, resnet_small
    from nnship.models.train import accuracy, train_classifier

    epochs = 2 if quick else 4
    n_calib = 128 if quick else 256
    cases = []
    train, test = digits_images(size=32, channels=3)
    for name, factory in (
        ("resnet", lambda: resnet_small(width=32)),
        ("mobilenet", lambda: mobilenet_small()),
    ):
        if name not in wanted:
            continue
        model = train_classifier(factory(), train, epochs=epochs, seed=0)
        acc = accuracy(model, test)
        path = _export(model, {"x": train.inputs["x"][:2]}, workdir / f"{name}.onnx")
        calib = {"x": train.inputs["x"][:n_calib]}
        cases.append(Case(name, path, calib, dict(test.inputs), test.labels, acc))
    if "encoder" in wanted:
        train, test = digits_tokens()
        model = encoder_small(vocab_size=17, max_len=64, num_classes=10, d_model=64, layers=2)
        model = train_classifier(model, train, epochs=epochs, seed=0)
        acc = accuracy(model, test)
        example = {k: v[:2] for k, v in train.inputs.items()}
        calib = {k: v[:n_calib] for k, v in train.inputs.items()}
        path = _export(model, example, workdir / "encoder.onnx")
        cases.append(Case("encoder-cls", path, calib, dict(test.inputs), test.labels, acc))
        model.classifier = None  # same weights, mean-pooled sentence embeddings
        path = _export(model, example, workdir / "encoder-emb.onnx")
        cases.append(Case("encoder-emb", path, calib, dict(test.inputs), None, None))
    return cases


# -- variants -------------------------------------------------------------------------------
def plain_kl(table):  # noqa: ANN001, ANN201
    """The same table, but entropy ranges from TensorRT's plain KL search (no guard)."""
    from nnship.calibration import CalibrationTable

    class PlainKlTable(CalibrationTable):
        def ranges(self, method: str = "minmax", **params):  # noqa: ANN201
            return super().ranges(method, **{**params, "entropy_guard": False})

    return PlainKlTable(**vars(table))


def nnship_variants(case: Case, workdir: Path) -> dict[str, tuple[Path | None, str]]:
    from nnship.calibration import collect_statistics
    from nnship.quantize import make_config, quantize
    from nnship.sources import ArrayData

    calib, evaluation = ArrayData(case.calib), ArrayData(case.eval, case.labels)
    table = collect_statistics(case.onnx, calib)
    out: dict[str, tuple[Path | None, str]] = {}
    for profile in PROFILES:
        for method in ("auto", *METHODS, "entropy-kl"):
            path = workdir / f"{case.name}.{profile}.{method}.onnx"
            label = f"nnship {profile} {method}"
            # entropy-kl: TensorRT's KL without the guard (before/after). Transforms off: they
            # recollect a table, whose entropy ranges would be guarded again.
            plain = method == "entropy-kl"
            extra = {"method": "entropy", "equalization": "off", "smoothing": "off"}
            try:
                res = quantize(
                    case.onnx, path,
                    make_config(profile=profile, **(extra if plain else {"method": method})),
                    table=plain_kl(table) if plain else table,
                    calib_data=calib, eval_data=evaluation,
                )  # fmt: skip
                note = f"{len(res.quantized_nodes)}q/{len(res.float_nodes)}f"
                if method == "auto":
                    sel = res.method_selection
                    note = f"-> {res.method} ({sel.get('seconds', 0):.1f}s) {note}"
                not_applied = len(res.details.get("method_not_applied", {}))
                if not_applied:
                    note += f" ({not_applied} not {res.method})"
                if res.applied_transforms:
                    note += " +" + ",".join(t["name"] for t in res.applied_transforms)
                out[label] = (path, note)
            except Exception as exc:  # a failing variant is a row, not a crash
                out[label] = (None, f"failed: {exc}"[:80])
    for precision in ("fp16", "dynamic-int8"):
        path = workdir / f"{case.name}.{precision}.onnx"
        quantize(case.onnx, path, make_config(precisions=[precision]))
        out[f"nnship {precision}"] = (path, "")
    return out


def ort_variants(case: Case, workdir: Path) -> dict[str, tuple[Path | None, str]]:
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = single_samples(case.calib)
    pre = workdir / f"{case.name}.ort-pre.onnx"
    quant_pre_process(str(case.onnx), str(pre))
    out: dict[str, tuple[Path | None, str]] = {}
    for method in ORT_METHODS:
        path = workdir / f"{case.name}.ort.{method}.onnx"
        start = time.perf_counter()
        try:
            ort_quantize_static(
                pre, path, feeds, per_channel=True,
                calibrate_method=getattr(CalibrationMethod, method),
            )  # fmt: skip
            out[f"ort static {method}"] = (path, f"{time.perf_counter() - start:.0f}s")
        except Exception as exc:  # ORT's Entropy crashes on attention masks: report it
            out[f"ort static {method}"] = (None, f"failed: {exc}"[:80])
    return out


# -- measurement ----------------------------------------------------------------------------
def _session(path: Path):  # noqa: ANN202
    from nnship.backends.onnxruntime.outputs import make_session

    return make_session(path, threads=2)


def run_outputs(path: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    session = _session(path)
    n = len(next(iter(data.values())))
    outs = [
        session.run(None, {k: v[i : i + 64] for k, v in data.items()})[0] for i in range(0, n, 64)
    ]
    return np.concatenate(outs)


def metrics(ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    a, b = ref.reshape(len(ref), -1), out.reshape(len(out), -1).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    m = {"cosine": float(cos.mean()), "max_abs": float(np.abs(a - b).max())}
    if ref.ndim == 2 and ref.shape[1] > 1:
        m["agree"] = float((ref.argmax(1) == out.argmax(1)).mean())
        if labels is not None:
            m["acc"] = float((out.argmax(1) == labels).mean())
    return m


def latencies(paths: dict[str, Path], batch: dict[str, np.ndarray], rounds: int) -> dict:
    """Median ms per call, variants interleaved round by round so drift hits all alike."""
    sessions = {k: _session(p) for k, p in paths.items()}
    calls = {k: functools.partial(s.run, None) for k, s in sessions.items()}
    return interleaved_latency(calls, batch, rounds=rounds, runs=10, initial_warmup=10)


def calib_memory(case: Case, workdir: Path) -> dict[str, float]:
    """Peak RSS (MB) of each calibration method and of plain inference, one subprocess each."""
    data_path = workdir / f"{case.name}.calib.npz"
    np.savez(data_path, **case.calib)
    peaks = {}
    jobs = [("plain", "-")] + [("nnship", m) for m in METHODS] + [("ort", m) for m in ORT_METHODS]
    for kind, method in jobs:
        cmd = [sys.executable, __file__, "--child", kind, "--method", method,
               "--model", str(case.onnx), "--data", str(data_path)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        key = "plain inference" if kind == "plain" else f"{kind} {method}"
        peaks[key] = json.loads(lines[-1])["peak_mb"] if lines else float("nan")
    return peaks


def _child(kind: str, method: str, model: str, data_path: str) -> None:
    import onnxruntime.quantization  # noqa: F401

    import nnship.calibration  # noqa: F401  same imports in every child: a fair baseline

    data = dict(np.load(data_path))
    n = len(next(iter(data.values())))
    if kind == "plain":
        import onnxruntime as ort

        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        for i in range(0, n, 8):
            session.run(None, {k: v[i : i + 8] for k, v in data.items()})
    elif kind == "nnship":
        from nnship.calibration import collect_statistics
        from nnship.sources import ArrayData

        collect_statistics(model, ArrayData(data), batch_size=8).ranges(method)
    else:
        from onnxruntime.quantization.calibrate import CalibrationDataReader, create_calibrator
        from onnxruntime.quantization.calibrate import CalibrationMethod as CM

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter([{k: v[i : i + 8] for k, v in data.items()} for i in range(0, n, 8)])

            def get_next(self):  # noqa: ANN202
                return next(self.it, None)

        with tempfile.TemporaryDirectory() as tmp:
            cal = create_calibrator(model, augmented_model_path=f"{tmp}/aug.onnx",
                                    calibrate_method=getattr(CM, method))  # fmt: skip
            cal.collect_data(Reader())
            cal.compute_data()
    print(json.dumps({"peak_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (MB). VmHWM, not ru_maxrss: Linux carries
    ru_maxrss across execve, so a child of a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- report ---------------------------------------------------------------------------------
def report_case(case: Case, workdir: Path, rounds: int, memory: bool) -> None:
    variants = {"float": (case.onnx, "")}
    variants.update(nnship_variants(case, workdir))
    variants.update(ort_variants(case, workdir))
    ref = run_outputs(case.onnx, case.eval)
    timed = {k: p for k, (p, _) in variants.items() if p is not None and (
        k == "float" or "onnxruntime" in k or k.startswith("ort") or "dynamic" in k)}  # fmt: skip
    lat = latencies(timed, {k: v[:1] for k, v in case.eval.items()}, rounds)
    title = f"== {case.name}: {len(ref)} eval samples"
    if case.float_accuracy is not None:
        title += f", float accuracy {case.float_accuracy:.4f}"
    print(title)
    print(f"{'variant':34s} {'agree':>7s} {'acc':>7s} {'cosine':>9s} {'max_abs':>9s} "
          f"{'MB':>6s} {'ms':>7s} {'ratio':>6s}  note")  # fmt: skip
    for key, (path, note) in variants.items():
        if path is None:
            print(f"{key:34s} {note}")
            continue
        m = metrics(ref, run_outputs(path, case.eval), case.labels)
        size = path.stat().st_size / 1e6
        ms = lat.get(key)
        ratio = "" if ms is None else f"{ms / lat['float']:.2f}"
        print(f"{key:34s} {m.get('agree', float('nan')):7.4f} {m.get('acc', float('nan')):7.4f} "
              f"{m['cosine']:9.6f} {m['max_abs']:9.4f} {size:6.2f} "
              f"{'' if ms is None else f'{ms:.3f}':>7s} {ratio:>6s}  {note}")  # fmt: skip
    if memory:
        peaks = calib_memory(case, workdir)
        plain = peaks["plain inference"]
        print("calibration peak memory (MB, fresh process each; ratio to plain inference):")
        for key, mb in peaks.items():
            print(f"  {key:22s} {mb:8.1f}  {mb / plain:5.2f}x")
    print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    parser.add_argument("--models", default="resnet,mobilenet,encoder")
    parser.add_argument("--rounds", type=int, default=30, help="latency rounds of 10 calls")
    parser.add_argument("--no-memory", action="store_true", help="skip calibration memory")
    parser.add_argument("--workdir", type=Path, help="keep models here (default: temp dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.method, args.model, args.data)
        return 0
    logging.basicConfig(level=logging.ERROR)
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="nnship-qbench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for case in build_cases(workdir, args.quick, set(args.models.split(","))):
            report_case(case, workdir, args.rounds, not args.no_memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
