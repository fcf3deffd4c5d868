"""Empirical bias correction on a trained MobileNetV2-style CNN (ReLU6 everywhere, so
cross-layer equalization skips it): top-1 agreement with float, accuracy and logits cosine on
the held-out split, before vs after `nnship.calibration.correct_bias`, per range method.

The model is `mobilenet_small(width_mult=0.5)` trained on the real digits (32x32, 3 channels);
calibration and correction use the train split, every figure comes from the test split.

    .venv/bin/python bench/bias_correction.py [--epochs 8] [--methods percentile,minmax]
        [--profiles onnxruntime] [--samples 128] [--per-tensor] [--weights model.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _metrics(reference, candidate) -> dict[str, float]:
    from nnship.quantize.evaluate import compare

    return compare(reference, candidate)


def _integer_kernels(model, tmp: Path) -> int:
    """QLinearConv + QGemm nodes in ONNX Runtime's optimized graph of `model`."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(options.optimized_model_filepath).graph
    return sum(n.op_type in ("QLinearConv", "QGemm") for n in graph.node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--methods", default="percentile,minmax")
    parser.add_argument("--profiles", default="onnxruntime")
    parser.add_argument("--samples", type=int, default=128, help="correction samples")
    parser.add_argument("--per-tensor", action="store_true", help="per-tensor weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weights", type=Path, help="state dict cache: loaded if present, else written"
    )
    args = parser.parse_args()

    import torch

    from nnship.backends.onnxruntime.outputs import run_model
    from nnship.calibration import correct_bias
    from nnship.core import TensorSpec
    from nnship.datasets import digits_images
    from nnship.exporter import ExportConfig, export_onnx
    from nnship.models import mobilenet_small
    from nnship.models.train import accuracy, train_classifier
    from nnship.onnx.graph import load_onnx
    from nnship.quantize import make_config, quantize
    from nnship.sources import ArrayData

    train, test = digits_images(size=32, channels=3, seed=args.seed)
    start = time.perf_counter()
    model = mobilenet_small(width_mult=0.5)
    if args.weights is not None and args.weights.is_file():
        model.load_state_dict(torch.load(args.weights, weights_only=True))
        model.eval()
    else:
        model = train_classifier(model, train, epochs=args.epochs, seed=args.seed)
        if args.weights is not None:
            torch.save(model.state_dict(), args.weights)
    print(
        f"mobilenet_small(0.5) on digits 32x32: float accuracy {accuracy(model, test):.4f} "
        f"({len(train)} train / {len(test)} test, {time.perf_counter() - start:.0f} s training)"
    )
    calib = ArrayData(dict(train.inputs))
    held_out = ArrayData(dict(test.inputs), test.labels)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export_onnx(
            model,
            fp32,
            input_specs=[TensorSpec("x", ("batch", 3, 32, 32))],
            options=ExportConfig(exporter="torchscript"),
        )
        fmodel = load_onnx(fp32)
        reference = run_model(fmodel, held_out)
        header = (
            "profile      method      variant   top1_agree  accuracy  cosine     max_abs"
            "  logit_bias"
        )
        print(header)
        for profile in args.profiles.split(","):
            for method in args.methods.split(","):
                cfg = make_config(
                    method=method,
                    profile=profile,
                    per_channel=not args.per_tensor,
                    equalization="off",
                    smoothing="off",
                )
                qpath = Path(tmp) / f"{profile}-{method}.onnx"
                quantize(fp32, qpath, cfg, calib_data=calib)
                qmodel = load_onnx(qpath)
                start = time.perf_counter()
                corrected, report = correct_bias(fmodel, qmodel, calib, max_samples=args.samples)
                seconds = time.perf_counter() - start
                for variant, candidate in (("plain", qmodel), ("corrected", corrected)):
                    outputs = run_model(candidate, held_out)
                    m = _metrics(reference, outputs)
                    # mean over classes of |mean over samples of (quantized - float) logit|
                    bias = np.abs((outputs.primary - reference.primary).mean(0)).mean()
                    print(
                        f"{profile:12s} {method:11s} {variant:9s} {m['top1_agreement']:.4f}"
                        f"      {m['accuracy']:.4f}    {m['cosine']:.6f}  {m['max_abs']:.4f}"
                        f"   {bias:.4f}"
                    )
                kernels = (
                    _integer_kernels(qmodel, Path(tmp)),
                    _integer_kernels(corrected, Path(tmp)),
                )
                print(
                    f"  correction: {len(report.layers)} layers, {report.passes} passes, "
                    f"{report.samples} samples, {seconds:.1f} s; QLinearConv+QGemm "
                    f"{kernels[0]} -> {kernels[1]}"
                )


if __name__ == "__main__":
    main()
