"""The real-model zoo: nnship on real pretrained models that pip packages ship with their weights,
side by side with ONNX Runtime's `quantize_static` and NNCF on the same real data, in one run.

Per model, through nnship's public Python API: export (torch sources) -> structured prune 0.3
(torch CNNs) -> quantize INT8 with every profile (default method) -> compile for ONNX Runtime and
OpenVINO -> validate; the anchors: `quantize_static` (MinMax, QDQ, U8 activations, S8 per-channel
weights), NNCF (`nncf.quantize` of the OpenVINO model; TRANSFORMER for the encoder), OpenVINO f32
and bf16 (where the CPU has it). Prints per model the task metric per variant, size, latency p50
and ratios from ONE interleaved latency pass (every variant warmed up before its turn, several
rounds), the CPU flags and the versions. A stage that fails is a row with its error.

    PYTHONPATH=src .venv/bin/python bench/zoo.py [--quick] [--models a,b] [--json out.json]
        [--markdown docs/zoo.md]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import zoo_models  # noqa: E402

THREADS = 2
GATE_COSINE = 0.99
PROFILES = ("onnxruntime", "openvino", "tensorrt")
RunFn = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass
class Row:
    variant: str
    stage: str
    ok: bool = True
    metric: float | None = None
    details: dict[str, float] = field(default_factory=dict)
    size_mb: float | None = None
    p50_ms: float | None = None
    seconds: float | None = None
    note: str = ""
    kind: str = ""  # "ort", "ov" or "" (latency family for the ratios)


@dataclass
class ModelResult:
    name: str
    family: str
    metric_name: str
    data_note: str
    rows: list[Row] = field(default_factory=list)
    wall_s: float = 0.0
    ratios: dict[str, float] = field(default_factory=dict)
    loadavg: tuple[float, float] | None = None


# -- runners ----------------------------------------------------------------------------------
def ort_run(path: Path) -> RunFn:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, batch)


def ov_run(path: Path, precision: str = "f32") -> RunFn:
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    core = ov.Core()
    config = {
        hints.performance_mode(): hints.PerformanceMode.LATENCY,
        props.inference_num_threads(): THREADS,
        hints.inference_precision(): getattr(ov.Type, precision),
    }
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    outputs = compiled.outputs

    def run(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = request.infer(batch)
        return [np.array(result[o]) for o in outputs]

    return run


def nnship_run(runner) -> RunFn:  # noqa: ANN001 - an nnship Runner
    names = list(runner.output_names)
    return lambda batch: [np.asarray(v) for v in _ordered(runner.run(batch, check=False), names)]


def _ordered(out: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    return [out[n] for n in names] if all(n in out for n in names) else list(out.values())


def torch_run(module) -> RunFn:  # noqa: ANN001
    import torch

    def run(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(*[torch.from_numpy(v) for v in batch.values()])
        return [o.numpy() for o in (out if isinstance(out, tuple | list) else [out])]

    return run


def collect(run: RunFn, data: dict[str, np.ndarray], batch1: bool, reduce=None) -> list[np.ndarray]:  # noqa: ANN001
    """Every output over `data`, sample axis first: batches of 32, or one sample per call
    (stacked on a new axis) for models whose batch is fixed at 1."""
    n = len(next(iter(data.values())))
    step = 1 if batch1 else 32
    chunks: list[list[np.ndarray]] = []
    for i in range(0, n, step):
        outs = run({k: v[i : i + step] for k, v in data.items()})
        chunks.append(reduce(outs) if reduce is not None else outs)
    join = np.stack if batch1 else np.concatenate
    return [join([c[j] for c in chunks]) for j in range(len(chunks[0]))]


def fixed_batch_one(onnx_path: Path) -> bool:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name not in inits and dims and dims[0].dim_value == 1:
            return True
    return False


def cpu_flags() -> dict[str, object]:
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    info: dict[str, object] = {f: f in flags for f in wanted}
    try:
        import openvino as ov

        info["openvino_caps"] = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception as exc:  # noqa: BLE001
        info["openvino_caps"] = f"unavailable: {exc}"
    info["cpu"] = platform.processor() or platform.machine()
    info["cores"] = os.cpu_count()
    return info


def versions() -> dict[str, str]:
    out = {}
    for name in ("nnship", "torch", "onnx", "onnxruntime", "openvino", "nncf", "torch_pruning"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "not installed"
    return out


def _err(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:300]


# -- one model --------------------------------------------------------------------------------
class ZooRun:
    def __init__(self, case: zoo_models.ZooCase, workdir: Path, rounds: int) -> None:
        self.case, self.dir, self.rounds = case, workdir, rounds
        self.result = ModelResult(case.name, case.family, case.metric_name, case.data_note)
        self.runs: dict[str, RunFn] = {}
        self.ref: list[np.ndarray] | None = None
        self.batch1 = False
        self.bf16 = False
        self.prune_only = False
        self.retried: set[str] = set()

    def row(self, variant: str, stage: str, **kw) -> Row:  # noqa: ANN003
        row = Row(variant, stage, **kw)
        self.result.rows.append(row)
        print(f"  [{stage}] {variant}: " + ("ok" if row.ok else f"FAILED {row.note}"), flush=True)
        return row

    def fail(self, variant: str, stage: str, exc: BaseException, seconds: float | None = None):  # noqa: ANN201
        logging.debug("%s", traceback.format_exc())
        return self.row(variant, stage, ok=False, note=_err(exc), seconds=seconds)

    def measure(self, variant: str, stage: str, run: RunFn, *, path: Path | None = None,
                kind: str = "", note: str = "", seconds: float | None = None) -> None:  # fmt: skip
        try:
            outs = collect(run, self.case.eval, self.batch1, self.case.reduce)
            scores = self.case.metric(self.ref, outs)
        except Exception as exc:  # noqa: BLE001 - a variant that cannot run is a row
            self.fail(variant, stage + " (run)", exc, seconds)
            return
        size = _size_mb(path) if path is not None else None
        metric = scores.pop("metric")
        self.row(variant, stage, metric=metric, details=scores, size_mb=size, kind=kind,
                 note=note, seconds=seconds)  # fmt: skip
        self.runs[variant] = run

    # stages
    def float_onnx(self) -> Path | None:
        from nnship import api

        case = self.case
        if case.factory is None:
            return case.onnx_path
        module = case.factory()
        self.module = module
        self.ref = collect(torch_run(module), case.eval, False)
        self.row(
            "torch fp32 (reference)", "reference", metric=case.metric(self.ref, self.ref)["metric"]
        )
        self._export_renamed(module)
        path = self.dir / f"{case.name}.fp32.onnx"
        start = time.perf_counter()
        try:
            res = api.export(module, path, inputs=case.input_specs)
            self.row("nnship export", "export", note=f"max|err| vs torch {res.max_abs_error:.2e}, "
                     f"{res.exporter}, opset {res.opset}", seconds=time.perf_counter() - start,
                     size_mb=_size_mb(path))  # fmt: skip
            return path
        except Exception as exc:  # noqa: BLE001
            self.fail("nnship export", "export", exc, time.perf_counter() - start)
        return self._fallback_export(module, path)

    def _export_renamed(self, module) -> None:  # noqa: ANN001
        """Target: export works with input names that are not forward()'s parameter names
        (a user's `--input x:...`); inputs bind by position. Checked, not used downstream."""
        from nnship import api

        specs = [f"in{i}:{s.split(':', 1)[1]}" for i, s in enumerate(self.case.input_specs)]
        label = f"nnship export, inputs named {','.join(s.split(':')[0] for s in specs)}"
        start = time.perf_counter()
        try:
            res = api.export(module, self.dir / "renamed.onnx", inputs=specs)
            self.row(label, "export", seconds=time.perf_counter() - start,
                     note=f"max|err| vs torch {res.max_abs_error:.2e}")  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            self.fail(label, "export", exc, time.perf_counter() - start)

    def _fallback_export(self, module, path: Path) -> Path | None:  # noqa: ANN001
        import torch

        names = list(self.case.eval)
        example = tuple(torch.from_numpy(v[:1]) for v in self.case.eval.values())
        try:
            torch.onnx.export(module, example, str(path), input_names=names, dynamo=False,
                              dynamic_axes={n: {0: "batch"} for n in names}, opset_version=17)  # fmt: skip
            self.row("torch.onnx.export (bench fallback, TorchScript exporter)", "export",
                     note="used downstream because nnship export failed", size_mb=_size_mb(path))  # fmt: skip
            return path
        except Exception as exc:  # noqa: BLE001
            self.fail("torch.onnx.export (bench fallback)", "export", exc)
            return None

    def prune(self) -> None:
        from nnship import api
        from nnship.compress.config import PruneConfig
        from nnship.sources import ArrayData

        case = self.case
        start = time.perf_counter()
        try:
            report = api.prune(self.module, self.dir / f"{case.name}.pruned.pt2",
                               PruneConfig(ratio=0.3), inputs=case.input_specs,
                               data=ArrayData(case.calib))  # fmt: skip
            res = report.result
        except Exception as exc:  # noqa: BLE001
            self.fail("nnship prune 0.3 (structured)", "prune", exc, time.perf_counter() - start)
            return
        seconds = time.perf_counter() - start
        note = (f"params {res.params_after / res.params_before:.2f}x, "
                f"FLOPs {res.flops_after / max(res.flops_before, 1):.2f}x, "
                f"{len(res.groups)} groups, {len(res.skipped)} skipped")  # fmt: skip
        if res.params_after == res.params_before:
            first = next(iter(res.skipped.items()), ("", ""))
            self.row("nnship prune 0.3 (structured)", "prune", ok=False, seconds=seconds,
                     note=f"pruned nothing: {note}; e.g. {first[0]}: {first[1]}"[:300])  # fmt: skip
            return
        path = self.dir / f"{case.name}.pruned.onnx"
        try:
            api.export(res.module, path, inputs=case.input_specs)
        except Exception as exc:  # noqa: BLE001
            self.fail("nnship prune 0.3 -> export", "prune", exc, seconds)
            return
        self.measure("nnship pruned 0.3 fp32 (ORT, no distillation)", "prune", ort_run(path),
                     path=path, kind="ort", note=note, seconds=seconds)  # fmt: skip

    def prune_anchor(self) -> None:
        """Torch-Pruning's own MetaPruner (L1 magnitude, ratio 0.3, channels rounded to 8), the
        layers that produce the model's outputs ignored: what nnship's pruning is held to."""
        import torch

        label = "Torch-Pruning MetaPruner L1 0.3 (anchor, no distillation)"
        start = time.perf_counter()
        try:
            import torch_pruning as tp

            model = self.case.factory()
            example = tuple(torch.from_numpy(v[:1]) for v in self.case.calib.values())
            with torch.no_grad():
                outs = model(*example)
            outs = outs if isinstance(outs, tuple | list) else [outs]
            widths = {o.shape[1] for o in outs if o.ndim >= 2}
            heads = [m for m in model.modules()
                     if (isinstance(m, torch.nn.Linear) and m.out_features in widths)
                     or (isinstance(m, torch.nn.Conv2d) and m.out_channels in widths)]  # fmt: skip
            before = sum(p.numel() for p in model.parameters())
            pruner = tp.pruner.MetaPruner(
                model, example, importance=tp.importance.MagnitudeImportance(p=1),
                pruning_ratio=0.3, round_to=8, ignored_layers=heads,
            )  # fmt: skip
            pruner.step()
            after = sum(p.numel() for p in model.parameters())
            path = self.dir / f"{self.case.name}.tp-pruned.onnx"
            names = list(self.case.calib)
            torch.onnx.export(model.eval(), example, str(path), input_names=names, dynamo=False,
                              dynamic_axes={n: {0: "batch"} for n in names}, opset_version=17)  # fmt: skip
            run = ort_run(path)
        except Exception as exc:  # noqa: BLE001
            self.fail(label, "prune anchor", exc, time.perf_counter() - start)
            return
        self.measure(label, "prune anchor", run, path=path, kind="ort",
                     seconds=time.perf_counter() - start,
                     note=f"params {after / before:.2f}x; {len(heads)} output layers ignored")  # fmt: skip

    def quantize(self, fp32: Path) -> dict[str, Path]:
        from nnship import api
        from nnship.quantize import make_config
        from nnship.sources import ArrayData

        out: dict[str, Path] = {}
        calib = ArrayData(self.case.calib)
        extra = {"calibration": {"batch_size": 1}} if self.batch1 else {}
        for profile in PROFILES:
            label = f"nnship int8 {profile}-profile QDQ (ORT)"
            path = self.dir / f"{self.case.name}.int8.{profile}.onnx"
            start = time.perf_counter()
            try:
                res = api.quantize(fp32, path, make_config(profile=profile, **extra),
                                   calib_data=calib)  # fmt: skip
            except Exception as exc:  # noqa: BLE001
                self.fail(label, "quantize", exc, time.perf_counter() - start)
                # the default failed: one retry with a fixed method (no "auto" selection), so
                # the stages after it still get measured; labelled as such
                label = f"nnship int8 {profile}-profile QDQ (ORT), retry method=minmax"
                start = time.perf_counter()
                try:
                    res = api.quantize(fp32, path, make_config(profile=profile, method="minmax",
                                       **extra), calib_data=calib)  # fmt: skip
                except Exception as exc2:  # noqa: BLE001
                    self.fail(label, "quantize", exc2, time.perf_counter() - start)
                    continue
                self.retried.add(profile)
            seconds = time.perf_counter() - start
            note = (f"method {res.method}, {len(res.quantized_nodes)}q/{len(res.float_nodes)}f"
                    + (" +" + ",".join(t["name"] for t in res.applied_transforms)
                       if res.applied_transforms else ""))  # fmt: skip
            out[profile] = path
            try:
                run = ort_run(path)
            except Exception as exc:  # noqa: BLE001
                self.fail(label, "quantize (ORT load)", exc, seconds)
                continue
            self.measure(label, "quantize", run, path=path, kind="ort", note=note, seconds=seconds)
        return out

    def compile_all(self, fp32: Path, qdq: dict[str, Path]) -> dict[str, object]:
        from nnship import api
        from nnship.backends import get_backend

        jobs = [("nnship fp32 -> ORT artifact", fp32, "onnxruntime", "fp32", "ort"),
                ("nnship fp32 -> OpenVINO artifact", fp32, "openvino", "fp32", "ov")]  # fmt: skip
        if "onnxruntime" in qdq:
            jobs.append(("nnship int8 -> ORT artifact", qdq["onnxruntime"], "onnxruntime",
                         None, "ort"))  # fmt: skip
        if "openvino" in qdq:
            jobs.append(("nnship int8 -> OpenVINO artifact", qdq["openvino"], "openvino",
                         None, "ov"))  # fmt: skip
        runners: dict[str, object] = {}
        for label, src, backend, precision, kind in jobs:
            start = time.perf_counter()
            try:
                folder = self.dir / f"{self.case.name}.{label.split()[1]}.{backend}"
                artifact = api.compile(src, folder, backend=backend, precision=precision)
                runner = get_backend(backend).load(artifact, threads=THREADS)
            except Exception as exc:  # noqa: BLE001
                self.fail(label, "compile", exc, time.perf_counter() - start)
                continue
            size = _size_mb(Path(artifact.path))
            profile = {"nnship int8 -> ORT artifact": "onnxruntime",
                       "nnship int8 -> OpenVINO artifact": "openvino"}.get(label)  # fmt: skip
            note = "from the method=minmax retry" if profile in self.retried else ""
            self.measure(label, "compile", nnship_run(runner), kind=kind, note=note,
                         seconds=time.perf_counter() - start)  # fmt: skip
            if self.result.rows[-1].ok:
                self.result.rows[-1].size_mb = size
                runners[label] = runner
        return runners

    def validate(self, fp32: Path, runners: dict[str, object]) -> None:
        from nnship import api
        from nnship.backends.onnxruntime import OnnxRuntimeRunner
        from nnship.backends.torch_runner import TorchRunner
        from nnship.core import TensorSpec
        from nnship.sources import ArrayData
        from nnship.validate.config import Gates, LatencyConfig, ValidateConfig

        if not runners:
            return
        n = min(64, len(next(iter(self.case.eval.values()))))
        data = ArrayData({k: v[:n] for k, v in self.case.eval.items()})
        start = time.perf_counter()
        try:
            if self.case.factory is not None:
                specs = [TensorSpec.parse(s) for s in self.case.input_specs]
                baseline = TorchRunner(self.module, specs)
            else:
                baseline = OnnxRuntimeRunner(fp32, threads=THREADS)
            # a model whose batch is fixed at 1 needs batch_size 1 (`--batch-size 1`), as a
            # user would pass: nnship's validate does not read it from the model
            config = ValidateConfig(batch_size=1 if self.batch1 else 32,
                                    gates=Gates(min_cosine=GATE_COSINE))  # fmt: skip
            report = api.validate(baseline, runners, data, config=config,
                                  latency=LatencyConfig(enabled=False))  # fmt: skip
            failed = sorted({v.row for v in report.failed_gates})
            worst = []
            for r in report.rows:
                cos = min((o.cosine_mean for o in r.outputs if o.cosine_mean is not None),
                          default=None)  # fmt: skip
                worst.append(f"{r.label}: {'' if cos is None else f'{cos:.4f}'}")
            verdict = "passed" if report.passed else f"FAILED for {', '.join(failed)}"
            self.row("nnship validate (report)", "validate", seconds=time.perf_counter() - start,
                     note=f"gate min_cosine {GATE_COSINE} (worst output) {verdict}; {n} samples;"
                     " cosine " + "; ".join(worst))  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            self.fail("nnship validate (report)", "validate", exc, time.perf_counter() - start)

    def anchors(self, fp32: Path) -> None:
        self._ort_static(fp32)
        self._nncf(fp32)
        try:
            self.measure("OpenVINO f32 (anchor)", "anchor", ov_run(fp32, "f32"), kind="ov",
                         path=fp32)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            self.fail("OpenVINO f32 (anchor)", "anchor", exc)
        if self.bf16:
            try:
                self.measure("OpenVINO bf16 (anchor)", "anchor", ov_run(fp32, "bf16"), kind="ov",
                             path=fp32)  # fmt: skip
            except Exception as exc:  # noqa: BLE001
                self.fail("OpenVINO bf16 (anchor)", "anchor", exc)
        else:
            self.row("OpenVINO bf16 (anchor)", "anchor", ok=False, note="CPU has no BF16")

    def _readers(self):  # noqa: ANN202
        data = self.case.calib
        n = len(next(iter(data.values())))
        return [{k: v[i : i + 1] for k, v in data.items()} for i in range(n)]

    def _ort_static(self, fp32: Path) -> None:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process

        items = self._readers()

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(items)

            def get_next(self):  # noqa: ANN202
                return next(self.it, None)

        label = "ORT quantize_static MinMax U8S8 per-channel (anchor)"
        path = self.dir / f"{self.case.name}.ort-static.onnx"
        start = time.perf_counter()
        try:
            pre = self.dir / f"{self.case.name}.ort-pre.onnx"
            try:
                quant_pre_process(str(fp32), str(pre))
                src, note = pre, ""
            except Exception as exc:  # noqa: BLE001
                src, note = fp32, f"quant_pre_process failed ({_err(exc)[:80]}); raw model"
            quantize_static(str(src), str(path), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
            seconds = time.perf_counter() - start
            run = ort_run(path)
        except Exception as exc:  # noqa: BLE001
            self.fail(label, "anchor", exc, time.perf_counter() - start)
            return
        self.measure(label, "anchor", run, path=path, kind="ort", note=note, seconds=seconds)
        try:
            self.measure("OpenVINO running ORT's QDQ (anchor)", "anchor", ov_run(path), kind="ov",
                         path=path)  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            self.fail("OpenVINO running ORT's QDQ (anchor)", "anchor", exc)

    def _nncf(self, fp32: Path) -> None:
        label = "NNCF int8 OpenVINO IR (anchor)" + (" TRANSFORMER" if self.case.transformer else "")
        start = time.perf_counter()
        try:
            import nncf
            import openvino as ov

            model = ov.convert_model(str(fp32))
            kwargs = {"model_type": nncf.ModelType.TRANSFORMER} if self.case.transformer else {}
            items = self._readers()
            qmodel = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), **kwargs)
            path = self.dir / f"{self.case.name}.nncf.xml"
            ov.save_model(qmodel, str(path))
            seconds = time.perf_counter() - start
            run = ov_run(path)
        except Exception as exc:  # noqa: BLE001
            self.fail(label, "anchor", exc, time.perf_counter() - start)
            return
        self.measure(label, "anchor", run, path=path, kind="ov", seconds=seconds)

    def latency(self) -> None:
        """One interleaved pass: round by round, each variant gets warm-up calls then timed
        calls, so machine drift hits all variants alike. p50 over every timed call."""
        batch = {k: v[:1] for k, v in self.case.eval.items()}
        times: dict[str, list[float]] = {k: [] for k in self.runs}
        load_before = os.getloadavg()[0]
        for _ in range(self.rounds):
            for key, run in self.runs.items():
                for _ in range(3):
                    run(batch)
                for _ in range(10):
                    t = time.perf_counter()
                    run(batch)
                    times[key].append(time.perf_counter() - t)
        for row in self.result.rows:
            if row.variant in times:
                row.p50_ms = float(np.median(times[row.variant]) * 1e3)
        # the machine is shared: the load average says how far to trust these ratios
        self.result.loadavg = (load_before, os.getloadavg()[0])

    def ratios(self) -> None:
        compute_ratios(self.result)

    def run(self) -> ModelResult:
        start = time.perf_counter()
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - the harness itself must not lose the table
            self.fail("zoo harness", "harness", exc)
        self.result.wall_s = time.perf_counter() - start
        return self.result

    def _run(self) -> None:
        fp32 = self.float_onnx()
        if fp32 is None:
            return
        self.batch1 = fixed_batch_one(fp32)
        caps = cpu_flags().get("openvino_caps", [])
        self.bf16 = isinstance(caps, list) and "BF16" in caps
        if self.ref is None:  # ONNX source: the shipped float ONNX on ORT is the reference
            self.ref = collect(ort_run(fp32), self.case.eval, self.batch1, self.case.reduce)
            self.row("ORT fp32 shipped ONNX (reference)", "reference", metric=1.0,
                     size_mb=_size_mb(fp32))  # fmt: skip
        self.measure("ORT fp32 (float ONNX)", "reference", ort_run(fp32), path=fp32, kind="ort")
        if self.case.prunable and self.case.factory is not None:
            self.prune()
            self.prune_anchor()
        if self.prune_only:
            self.latency()
            self.ratios()
            return
        qdq = self.quantize(fp32)
        runners = self.compile_all(fp32, qdq)
        self.validate(fp32, runners)
        self.anchors(fp32)
        self.latency()
        self.ratios()


def compute_ratios(result: ModelResult) -> None:
    """Latency ratios within the one pass, and size ratios; adds to `result.ratios`."""
    p = {r.variant: r.p50_ms for r in result.rows if r.p50_ms}
    pairs = {
        "ORT int8 / ORT fp32 (nnship artifacts)": ("nnship int8 -> ORT artifact",
                                                   "nnship fp32 -> ORT artifact"),
        "nnship ORT int8 artifact / plain ORT fp32 session": ("nnship int8 -> ORT artifact",
                                                              "ORT fp32 (float ONNX)"),
        "nnship ORT int8 / quantize_static": ("nnship int8 -> ORT artifact",
                                              "ORT quantize_static MinMax U8S8 per-channel (anchor)"),
        "nnship OV int8 / NNCF IR": ("nnship int8 -> OpenVINO artifact",
                                     next((k for k in p if k.startswith("NNCF")), "")),
        "nnship OV int8 / OV on ORT QDQ": ("nnship int8 -> OpenVINO artifact",
                                           "OpenVINO running ORT's QDQ (anchor)"),
        "OV int8 / OV f32 (nnship artifacts)": ("nnship int8 -> OpenVINO artifact",
                                                "nnship fp32 -> OpenVINO artifact"),
        "OV bf16 / OV f32": ("OpenVINO bf16 (anchor)", "OpenVINO f32 (anchor)"),
        "pruned / ORT fp32": ("nnship pruned 0.3 fp32 (ORT, no distillation)",
                              "ORT fp32 (float ONNX)"),
        "Torch-Pruning 0.3 / ORT fp32": (
            "Torch-Pruning MetaPruner L1 0.3 (anchor, no distillation)",
            "ORT fp32 (float ONNX)"),
    }  # fmt: skip
    for name, (a, b) in pairs.items():
        if p.get(a) and p.get(b):
            result.ratios[name] = p[a] / p[b]
    sizes = {r.variant: r.size_mb for r in result.rows if r.size_mb}
    fp32 = sizes.get("nnship export") or sizes.get(
        "torch.onnx.export (bench fallback, TorchScript exporter)"
    )
    pruned = sizes.get("nnship pruned 0.3 fp32 (ORT, no distillation)")
    if fp32 and pruned:
        result.ratios["pruned / fp32 ONNX size"] = pruned / fp32
    tp_size = sizes.get("Torch-Pruning MetaPruner L1 0.3 (anchor, no distillation)")
    if fp32 and tp_size:
        result.ratios["Torch-Pruning / fp32 ONNX size"] = tp_size / fp32


def _size_mb(path: Path) -> float:
    path = Path(path)
    total = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        total += path.with_suffix(".bin").stat().st_size
    return total / 1e6


# -- rendering --------------------------------------------------------------------------------
def render(result: ModelResult) -> str:
    lines = [f"### {result.name} — {result.family}",
             f"Metric: **{result.metric_name}** against the float model. Data: {result.data_note}. "
             f"Wall time {result.wall_s:.0f} s.", "",
             "| variant | stage | metric | details | MB | p50 ms | s | note |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in result.rows:
        metric = "FAILED" if not r.ok else ("" if r.metric is None else f"{r.metric:.4f}")
        details = ", ".join(f"{k} {v:.4g}" for k, v in r.details.items())
        lines.append(
            f"| {r.variant} | {r.stage} | {metric} | {details} | "
            f"{'' if r.size_mb is None else f'{r.size_mb:.2f}'} | "
            f"{'' if r.p50_ms is None else f'{r.p50_ms:.3f}'} | "
            f"{'' if r.seconds is None else f'{r.seconds:.1f}'} | {r.note.replace('|', '/')} |"
        )
    if result.ratios:
        load = result.loadavg
        lines += ["", "Latency/size ratios (one interleaved pass"
                  + (f", 1-min load average {load[0]:.1f} -> {load[1]:.1f}" if load else "")
                  + "): " + "; ".join(f"{k} **{v:.2f}**" for k, v in result.ratios.items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(zoo_models.MODELS))
    parser.add_argument("--quick", action="store_true", help="fewer samples and latency rounds")
    parser.add_argument("--rounds", type=int, help="latency rounds (default 10, quick 4)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here (e.g. docs/zoo.md)")
    parser.add_argument("--workdir", type=Path, help="keep the models here (default: temp)")
    parser.add_argument("--from-json", type=Path, help="render a saved --json run, run nothing")
    parser.add_argument("--prune-only", action="store_true", help="export and prune rows only")
    parser.add_argument("--section", default="Measured", help="Markdown section to (re)write")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        results = [_result_from_dict(m) for m in saved["models"]]
        for result in results:
            compute_ratios(result)
        for result in results:
            print(render(result))
        if args.markdown:
            write_markdown(args.markdown, saved["environment"], results, args.section)
        return 0
    logging.basicConfig(level=logging.ERROR)
    import torch

    torch.set_num_threads(THREADS)
    env = {"cpu": cpu_flags(), "versions": versions(), "threads": THREADS,
           "command": " ".join(["bench/zoo.py", *sys.argv[1:]])}  # fmt: skip
    print("CPU:", json.dumps(env["cpu"]), "\nversions:", json.dumps(env["versions"]), flush=True)
    rounds = args.rounds or (4 if args.quick else 10)
    results = []
    with tempfile.TemporaryDirectory(prefix="nnship-zoo-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in [m for m in args.models.split(",") if m]:
            print(f"== {name}", flush=True)
            start = time.perf_counter()
            try:
                case = zoo_models.load(name, quick=args.quick)
            except Exception as exc:  # noqa: BLE001 - a model that cannot load is a row too
                result = ModelResult(name, "?", "?", "")
                result.rows.append(Row("load model + data", "load", ok=False, note=_err(exc)))
                result.wall_s = time.perf_counter() - start
            else:
                result = ZooRun(case, workdir / name, rounds)
                result.prune_only = args.prune_only
                (workdir / name).mkdir(exist_ok=True)
                result = result.run()
                result.wall_s = time.perf_counter() - start
            results.append(result)
            print(render(result), flush=True)
            # written after every model, so a long run that is cut short keeps what it measured
            if args.json:
                payload = {"environment": env, "models": [asdict(r) for r in results]}
                args.json.write_text(json.dumps(payload, indent=1))
            if args.markdown:
                write_markdown(args.markdown, env, results, args.section)
    return 0


def _result_from_dict(data: dict) -> ModelResult:
    rows = [Row(**r) for r in data.pop("rows")]
    return ModelResult(**data, rows=rows)


def write_markdown(
    path: Path, env: dict, results: list[ModelResult], section: str = "Measured"
) -> None:
    """Write the tables into `path` under "## <section>", replacing that section (up to the
    next "## " heading) and keeping the rest of the file."""
    cpu = env["cpu"]
    flags = ", ".join(k for k, v in cpu.items() if v is True) or "none of the listed"
    head = [
        f"## {section}",
        "",
        f"Command: `PYTHONPATH=src .venv/bin/python {env['command']}`. "
        f"{THREADS} threads, batch 1 latency, {cpu.get('cores')} cores; CPU flags: {flags}; "
        f"OpenVINO CPU capabilities: {cpu.get('openvino_caps')}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "",
    ]
    body = "\n".join(render(r) for r in results)
    text = path.read_text() if path.exists() else ""
    marker = f"## {section}\n"
    before, _, rest = text.partition(marker) if marker in text else (text, "", "")
    after = rest[rest.index("\n## ") + 1 :] if "\n## " in rest else ""
    path.write_text(before.rstrip("\n") + "\n\n" + "\n".join(head) + "\n" + body
                    + ("\n" + after if after else ""))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
