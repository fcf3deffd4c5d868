"""Where the INT8 error of a real transformer comes from: per-channel statistics of every
MatMul input (activation x constant weight) of all-MiniLM-L6-v2, and the embedding cosine when
only that input's MatMuls are quantized (nnship placement and Q/DQ writer, onnxruntime
profile, per-tensor uint8 minmax ranges from the calibration sentences).

    HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python bench/transformer_sensitivity.py \
        [--calib 64] [--eval 128]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transformer_int8 import cosine, prepare, stage  # noqa: E402


def main() -> int:
    from nnship.backends.onnxruntime.outputs import make_session
    from nnship.calibration.smooth import smoothing_groups
    from nnship.onnx.graph import add_outputs
    from nnship.quantize.pipeline import preprocess
    from nnship.quantize.placement import ensure_node_names, plan_placement
    from nnship.quantize.profiles import get_profile
    from nnship.quantize.qdq import write_qdq

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--eval", type=int, default=128)
    args = parser.parse_args()
    data = prepare(args.eval, args.calib, 64)
    model = ensure_node_names(preprocess(onnx.load(str(data["onnx"]))))
    calib, evaluation = data["calib"], data["eval"]

    def run(m: onnx.ModelProto, names=None, batch=None) -> list[np.ndarray]:  # noqa: ANN001
        session, batch = make_session(m), batch if batch is not None else evaluation
        n = len(batch["input_ids"])
        parts = [
            session.run(names, {k: v[i : i + 8] for k, v in batch.items()}) for i in range(0, n, 8)
        ]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]

    groups = smoothing_groups(model)
    names = sorted(groups)
    acts = dict(zip(names, run(add_outputs(model, names), names, calib)))
    ranges = {n: (float(a.min()), float(a.max())) for n, a in acts.items()}
    reference = run(model)[0]
    profile = get_profile("onnxruntime")
    rows = []
    for name in names:
        plan = plan_placement(model, profile, ranges)
        plan.nodes = [n for n in plan.nodes if n in {g.name for g in groups[name]}]
        qmodel, _ = write_qdq(model, ranges, plan, profile)
        flat = np.abs(acts[name].reshape(-1, acts[name].shape[-1])).max(0)
        top = int(flat.argmax())
        loss = 1.0 - cosine(reference, run(qmodel)[0])
        rows.append(
            (loss, name, [g.op_type for g in groups[name]], flat.max(), np.median(flat), top)
        )
        stage(f"{name}: 1 - cosine {loss:.2e}")
    print(
        "\n| MatMul input | consumers | channel max | median channel max | top channel | 1 - cosine |"
    )
    print("|---|---|---|---|---|---|")
    for loss, name, ops, top_v, med, top in sorted(rows, reverse=True):
        print(f"| {name} | {len(ops)} | {top_v:.1f} | {med:.2f} | {top} | {loss:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
