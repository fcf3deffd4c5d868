"""The bundle's `README.md` for the device team, generated from the manifest (deterministic)."""

from __future__ import annotations

from nnship.bundle.manifest import ArtifactEntry, Manifest
from nnship.validate.render.cells import fmt_value

_HARDWARE = {
    "openvino": "Intel CPUs (and Intel GPU/NPU with OpenVINO's plugins): `pip install openvino`",
    "onnxruntime": "any CPU (x86-64, ARM64); NVIDIA GPUs with onnxruntime-gpu: "
    "`pip install onnxruntime`",
    "tensorrt": "NVIDIA GPUs: build the engine on the device first (see below)",
}


def _size(entry: ArtifactEntry) -> str:
    return f"{sum(f.size for f in entry.files) / 1e6:.3f}"


def render_readme(manifest: Manifest) -> str:
    """The README text: how to run the bundle, which artifact for which hardware, the
    figures the build measured and on which machine."""
    lines = [
        f"# {manifest.name} ({manifest.model_version})",
        "",
        f"Deployment bundle written by nnship {manifest.nnship_version} "
        f"(manifest schema {manifest.schema_version}). Every file is listed with its SHA-256 "
        "in `manifest.json`; check them with `nnship bundle verify <this folder>`.",
        "",
        "## Run it",
        "",
        "On the device only numpy and one runtime are needed (no torch):",
        "",
        "```python",
        "import numpy as np",
        "from nnship.runtime import Bundle",
        "",
        'model = Bundle.load("<this folder>").session()   # target="auto": the best runtime present',
        "print(model.target, model.input_names, model.output_names)",
        'inputs = dict(np.load("<this folder>/samples/inputs.npz", allow_pickle=False))',
        "outputs = model.run(inputs)",
        "```",
        "",
        "or from the command line: `nnship run <this folder> --input sample.npy`"
        + (
            " (`--image photo.jpg` applies the declared preprocessing)."
            if manifest.preprocessing
            else "."
        ),
        "",
        "## Inputs and outputs",
        "",
    ]
    for kind, specs in (("input", manifest.inputs), ("output", manifest.outputs)):
        for spec in specs:
            shape = "x".join(str(d) for d in spec.shape)
            lines.append(f"- {kind} `{spec.name}`: {spec.dtype} [{shape}]")
    if manifest.preprocessing is not None:
        p = manifest.preprocessing
        lines.append(
            f"- preprocessing: {p.color}, resize {p.resize or '-'}, crop {p.crop or '-'}, "
            f"scale {p.scale:g}, mean {p.mean or '-'}, std {p.std or '-'}, {p.layout}"
        )
    if manifest.labels:
        lines.append(f"- {len(manifest.labels)} class labels in `manifest.json` (`labels`)")
    lines += [
        "",
        "## Artifacts: which one for which hardware",
        "",
        "| artifact | for | size MB | p50 ms | p90 ms | top-1 agree % | cosine (min) | gates |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    machines: dict[str, dict] = {}
    for entry in manifest.artifacts:
        v = entry.validation
        metrics = v.metrics if v else {}
        latency = v.latency_ms if v else {}
        gates = "-"
        if v and v.gates:
            gates = "pass" if v.gates.get("passed") else "FAIL"
        if v and v.fingerprint:
            machines[str(v.fingerprint.get("id"))] = v.fingerprint
        lines.append(
            f"| `{entry.id}` | {_HARDWARE.get(entry.backend, entry.backend)} | {_size(entry)} | "
            f"{fmt_value(latency.get('p50'))} | {fmt_value(latency.get('p90'))} | "
            f"{fmt_value(metrics.get('top1_agreement'), 2)} | {fmt_value(metrics.get('cosine_min'), 5)} | "
            f"{gates} |"
        )
    lines.append("")
    if machines:
        lines.append("Latency (batch 1) was measured by the build on:")
        lines.append("")
        for fid, fp in sorted(machines.items()):
            flags = ", ".join(fp.get("flags", []))
            runtimes = ", ".join(f"{k} {v}" for k, v in sorted(fp.get("runtimes", {}).items()))
            lines.append(
                f"- `{fid}`: {fp.get('cpu')}, {fp.get('cores')} logical CPUs, flags {flags}; "
                f"{runtimes}"
            )
        lines.append("")
        lines.append(
            "Figures on other hardware differ; accuracy figures are against the float model "
            "on the build's evaluation data."
        )
        lines.append("")
    kits = [a for a in manifest.artifacts if a.build_kit]
    if kits:
        lines += ["## TensorRT: build the engine on the device", ""]
        for entry in kits:
            kit = entry.build_kit or {}
            lines += [
                f"`{entry.id}` (in `{entry.folder}/`):",
                "",
                "```sh",
                f"cd {entry.folder}",
                "python build_engine.py        # TensorRT's Python API, reads build_spec.json",
                f"# or: {kit.get('trtexec', 'sh build_trtexec.sh')}",
                "```",
                "",
            ]
    if manifest.samples is not None:
        lines += [
            "## Smoke test",
            "",
            f"`{manifest.samples.inputs}` holds {manifest.samples.count} sample inputs "
            f"(from the {manifest.samples.source or 'build'} data); each runnable artifact's "
            "outputs on them are in `samples/expected.<artifact>.npz`, with the tolerance in "
            "`manifest.json`. `nnship bundle verify` re-runs them.",
            "",
        ]
    return "\n".join(lines)
