"""OpenVINO backend: ONNX (float or QDQ) -> IR (`model.xml` + `model.bin`) -> compiled model.

OpenVINO is imported lazily (`pip install 'nnship[openvino]'`). The IR is written atomically
into the output directory together with `artifact.json`, so `OpenVinoBackend.load(out_dir)`
reopens it with the device, hint and threads it was compiled for.

Precision of an artifact:
- "fp32": the float ONNX as IR with FP32 weights; inference precision pinned to f32.
- "fp16": the float ONNX as IR with FP16-compressed weights (`save_model(compress_to_fp16)`).
- "bf16": the float ONNX as IR with FP32 weights, compiled and run with
  `INFERENCE_PRECISION_HINT=bf16` (OpenVINO converts weights and activations to bf16 at
  compile time). Only where the device computes bf16 natively (`check_bf16`: OpenVINO's
  OPTIMIZATION_CAPABILITIES holds "BF16", i.e. avx512_bf16 or amx_bf16 CPUs); refused with a
  `BackendError` naming the missing capability elsewhere, at compile and at load.
- "int8": either OpenVINO converting nnship's QDQ ONNX ("qdq"), or NNCF quantizing the float IR
  with the calibration data ("nncf"); `OpenVinoOptions.int8_mode` picks, measured default in
  `nnship.backends.openvino.options.DEFAULT_OPENVINO_INT8_MODE`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nnship.backends.openvino.options import OpenVinoOptions
from nnship.backends.openvino.runner import (
    OpenVinoRunner,
    _ov,
    check_bf16,
    check_device,
    compile_config,
    device_capabilities,
    resolve_options,
)
from nnship.core import Artifact, Backend, CompileInputs, DataSource
from nnship.core.errors import BackendError
from nnship.core.fileio import ensure_writable_dir, sha256_file, write_json_atomic
from nnship.onnx.graph import load_onnx, onnx_output_names, onnx_precision, save_onnx
from nnship.onnx.subnormals import flush_subnormals

log = logging.getLogger(__name__)

ARTIFACT_FILE = "artifact.json"
IR_NAME = "model.xml"
__all__ = [
    "OpenVinoBackend",
    "OpenVinoRunner",
    "check_bf16",
    "check_device",
    "compile_config",
    "convert_to_ir",
    "load_artifact",
    "resolve_options",
]


def convert_to_ir(onnx_path: Path | str, xml_path: Path | str, *, compress_to_fp16: bool) -> Any:
    """Convert an ONNX file to an OpenVINO model and save it as IR at `xml_path` (+ `.bin`).
    Returns the `openvino.Model`. Not atomic by itself (the backend stages it)."""
    ov = _ov()
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO raises its own exception types for unsupported ops
        raise BackendError(f"OpenVINO could not convert '{onnx_path}': {exc}") from exc
    ov.save_model(model, str(xml_path), compress_to_fp16=compress_to_fp16)
    return model


class OpenVinoBackend(Backend):
    """ONNX -> OpenVINO IR, compiled and validated on the named device."""

    name = "openvino"

    options_type = OpenVinoOptions
    precisions = ("fp32", "int8", "fp16", "bf16")

    def _check_precision_impl(self, precision: str, options: OpenVinoOptions) -> None:
        """bf16 runs only where the device computes it natively (`check_bf16`)."""
        if precision == "bf16":
            check_bf16(_ov().Core(), str(options.device).upper())

    def _compile_impl(
        self,
        onnx_path: Path,
        out_dir: Path,
        options: OpenVinoOptions,
        *,
        precision: str | None,
        inputs: CompileInputs,
    ) -> Artifact:
        """Write `model.xml`/`model.bin`/`artifact.json` under `out_dir` and return the Artifact.

        `precision` None (default) is detected from the ONNX: QDQ -> "int8", FP16 weights ->
        "fp16", else "fp32". "int8" from a float ONNX needs `options.int8_mode == "nncf"` and
        `calib_data`; the `exclude_*` lists (ONNX node names, ONNX op types, regexes on node
        names) are left in float by NNCF. Other keyword arguments override `options` fields
        (device, hint, threads, ...). The model is compiled once on the device to prove it runs.
        """
        opts = options
        calib_data = inputs.calib_data
        exclude_names, exclude_op_types = inputs.exclude_names, inputs.exclude_op_types
        exclude_patterns = inputs.exclude_patterns
        core = _ov().Core()
        check_device(core, opts.device)  # fail before converting anything
        onnx_path = Path(onnx_path)
        onnx_model = load_onnx(onnx_path)
        detected = onnx_precision(onnx_model)
        precision = (precision or detected).lower()
        mode = self._int8_mode(precision, detected, opts, onnx_path, calib_data)
        if precision == "bf16":
            check_bf16(core, opts.device)
            opts = opts.model_copy(update={"inference_precision": "bf16"})
        out_dir = ensure_writable_dir(Path(out_dir))
        staging = Path(tempfile.mkdtemp(prefix=".openvino-", dir=out_dir))
        try:
            flushed, subnormals = flush_subnormals(onnx_model)
            source = onnx_path
            if subnormals.flushed:  # convert a flushed copy; the user's file stays as it is
                source = save_onnx(flushed, staging / f"{onnx_path.stem}.ftz.onnx")
            del flushed
            xml = staging / IR_NAME
            compress = opts.compress_to_fp16 or precision == "fp16"
            if mode == "nncf":
                from nnship.backends.openvino.nncf_quantize import quantize_onnx_with_nncf

                model = quantize_onnx_with_nncf(
                    source,
                    calib_data,  # type: ignore[arg-type]  # checked in _int8_mode
                    options=opts,
                    exclude_names=exclude_names,
                    exclude_op_types=exclude_op_types,
                    exclude_patterns=exclude_patterns,
                )
                _ov().save_model(model, str(xml), compress_to_fp16=compress)
            else:
                convert_to_ir(source, xml, compress_to_fp16=compress)
            output_names = onnx_output_names(onnx_model)
            runner = OpenVinoRunner(xml, options=opts, output_names=output_names)
            compile_s = runner.compile_s
            compiled_precision = _compiled_precision(runner)
            specs = [s.to_dict() for s in runner.input_specs]
            runner.close()
            final = self._publish(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        metadata = {
            "options": opts.model_dump(mode="json"),
            "int8_mode": mode,
            "onnx": str(onnx_path),
            "output_names": output_names,
            "inputs": specs,
            "compile_s": compile_s,
            "openvino_version": _ov().__version__,
            "inference_precision": compiled_precision,
            "device_capabilities": device_capabilities(core, opts.device),
            "subnormals": subnormals.to_dict(),
            "notes": [subnormals.describe()] if subnormals.total else [],
        }
        artifact = Artifact(
            path=final[IR_NAME],
            backend=self.name,
            precision=precision,
            device=opts.device,
            files=[final[IR_NAME], final["model.bin"], out_dir / ARTIFACT_FILE],
            source_hashes={str(onnx_path): sha256_file(onnx_path)},
            metadata=metadata,
        )
        write_json_atomic(out_dir / ARTIFACT_FILE, artifact.to_dict())
        log.info("OpenVINO %s IR written to %s (%s)", precision, artifact.path, mode or "convert")
        return artifact

    @staticmethod
    def _int8_mode(
        precision: str,
        detected: str,
        opts: OpenVinoOptions,
        onnx_path: Path,
        calib_data: DataSource | None,
    ) -> str | None:
        if precision not in ("fp32", "fp16", "bf16", "int8"):
            raise BackendError(
                f"OpenVINO cannot produce precision '{precision}'; choose fp32, fp16, bf16 or int8"
            )
        if precision != "int8":
            if detected == "int8":
                raise BackendError(
                    f"'{onnx_path}' is quantized (QDQ) but precision '{precision}' was asked; "
                    "pass the float ONNX, or precision int8"
                )
            return None
        if detected == "int8":
            return "qdq"
        if opts.int8_mode == "qdq":
            raise BackendError(
                f"'{onnx_path}' is a float model and [backends.openvino] int8_mode is 'qdq': "
                "quantize it first (nnship quantize --profile openvino), or set int8_mode = "
                "'nncf' and give calibration data"
            )
        if calib_data is None:
            raise BackendError(
                f"OpenVINO INT8 with NNCF needs calibration data for '{onnx_path}' "
                "(--calib DATA, or [data] calibration in the recipe)"
            )
        return "nncf"

    @staticmethod
    def _publish(staging: Path, out_dir: Path) -> dict[str, Path]:
        # .bin before .xml so a reader never sees an .xml whose weights are not in place;
        # artifact.json is written last by the caller and marks the directory complete.
        stale = out_dir / ARTIFACT_FILE
        if stale.exists():
            stale.unlink()
        final = {}
        for name in ("model.bin", IR_NAME):
            os.replace(staging / name, out_dir / name)
            final[name] = out_dir / name
        return final

    def load(self, artifact: Artifact | Path | str, **options: Any) -> OpenVinoRunner:
        """Open an artifact, an output directory (reads `artifact.json`), an `.xml` or an
        `.onnx` as an `OpenVinoRunner`. Keyword options (device, hint, threads, ...) override
        the ones the artifact was compiled with."""
        artifact = load_artifact(artifact) if not isinstance(artifact, Artifact) else artifact
        if artifact is None:
            raise BackendError("No OpenVINO artifact given")
        saved = artifact.metadata.get("options")
        base = OpenVinoOptions.model_validate(saved) if saved else None
        if artifact.device and "device" not in options and base is None:
            options["device"] = artifact.device
        if artifact.precision == "bf16":
            # The artifact's precision is its inference precision: a recipe's f32 default for
            # float baselines must not turn a bf16 artifact back into f32.
            options["inference_precision"] = "bf16"
            device = options.get("device") or (base.device if base else artifact.device or "CPU")
            check_bf16(_ov().Core(), str(device).upper())
        return OpenVinoRunner(
            artifact.path,
            options=base,
            output_names=artifact.metadata.get("output_names"),
            **options,
        )


def _compiled_precision(runner: OpenVinoRunner) -> str | None:
    """The inference precision OpenVINO really compiled with ("f32", "bf16", ...)."""
    try:
        value = runner.compiled_model.get_property("INFERENCE_PRECISION_HINT")
        return str(value.get_type_name()) if hasattr(value, "get_type_name") else str(value)
    except Exception:  # devices without the property (AUTO) answer with an exception
        return None


def load_artifact(path: Path | str) -> Artifact:
    """An OpenVINO Artifact from a compile output directory, its `artifact.json`, an IR `.xml`
    (with an `artifact.json` beside it if present) or an `.onnx`."""
    path = Path(path)
    meta = path / ARTIFACT_FILE if path.is_dir() else path.parent / ARTIFACT_FILE
    if path.is_dir() and not meta.is_file():
        raise BackendError(
            f"'{path}' holds no {ARTIFACT_FILE}; compile it first (nnship compile "
            "MODEL.onnx --backend openvino -o DIR) or pass the .xml"
        )
    if path.name == ARTIFACT_FILE or path.is_dir():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            artifact = Artifact.from_dict(data)
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"'{meta}' is not a readable nnship artifact file: {exc}") from exc
        if artifact.backend != "openvino":
            raise BackendError(f"'{meta}' is a {artifact.backend} artifact, not an OpenVINO one")
        # Files live beside artifact.json: resolve them there so a moved directory still loads.
        artifact.path = meta.parent / Path(artifact.path).name
        artifact.files = [meta.parent / Path(f).name for f in artifact.files]
        return artifact
    if path.suffix not in (".xml", ".onnx"):
        raise BackendError(f"'{path}' is not an OpenVINO IR (.xml) or ONNX file")
    if not path.is_file():
        raise BackendError(f"OpenVINO model '{path}' does not exist")
    if path.suffix == ".xml" and meta.is_file():
        artifact = load_artifact(meta)
        if Path(artifact.path).resolve() == path.resolve():
            return artifact
    precision = "fp32"
    if path.suffix == ".onnx":
        precision = onnx_precision(load_onnx(path, load_weights=False))
    return Artifact(path=path, backend="openvino", precision=precision, device="CPU")
