"""A loaded artifact that runs: one small class per runtime behind one checked `run`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import BundleError
from .manifest import ArtifactInfo, TensorInfo


def check_feeds(feeds: Mapping[str, np.ndarray], specs: tuple[TensorInfo, ...]) -> dict:
    """`feeds` against the declared inputs: names, dtype, rank, fixed sizes, and symbolic dims
    ("batch") of one size across all inputs. The error names the tensor."""
    if not isinstance(feeds, Mapping):
        raise BundleError(
            f"inputs: expected a dict of input name -> array, got {type(feeds).__name__}"
        )
    names = [s.name for s in specs]
    unknown = [k for k in feeds if k not in names]
    missing = [n for n in names if n not in feeds]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if unknown:
            parts.append(f"unknown input(s) {unknown}")
        raise BundleError(f"{'; '.join(parts)}; the model takes {names}")
    bound: dict[str, tuple[int, str]] = {}
    out = {}
    for spec in specs:
        value = feeds[spec.name]
        if not isinstance(value, np.ndarray):
            raise BundleError(
                f"input {spec.name!r}: expected a numpy array, got {type(value).__name__}"
            )
        if value.dtype != np.dtype(spec.dtype):
            raise BundleError(
                f"input {spec.name!r}: dtype {value.dtype}, the model takes {spec.dtype} "
                f"(convert with .astype(np.{spec.dtype}))"
            )
        declared = "x".join(str(d) for d in spec.shape)
        if value.ndim != len(spec.shape):
            raise BundleError(
                f"input {spec.name!r}: shape {list(value.shape)} has {value.ndim} dims, "
                f"the model takes {len(spec.shape)} ({declared})"
            )
        for axis, (dim, size) in enumerate(zip(spec.shape, value.shape)):
            if isinstance(dim, int) and dim != size:
                raise BundleError(
                    f"input {spec.name!r}: shape {list(value.shape)}, the model takes "
                    f"{declared} (axis {axis} must be {dim})"
                )
            if isinstance(dim, str):
                if dim in bound and bound[dim][0] != size:
                    size0, other = bound[dim]
                    raise BundleError(
                        f"input {spec.name!r}: axis {axis} ({dim!r}) is {size} but input "
                        f"{other!r} has {dim!r} = {size0}"
                    )
                bound.setdefault(dim, (size, spec.name))
        out[spec.name] = np.ascontiguousarray(value)
    return out


class Session:
    """One artifact loaded in its runtime. `run(feeds)` checks the inputs against the bundle's
    declared specs, runs, and returns {output name: array} in the declared output order."""

    backend = ""

    def __init__(self, artifact: ArtifactInfo, root: Path, inputs: tuple[TensorInfo, ...],
                 outputs: tuple[TensorInfo, ...], device: str,
                 threads: int | None = None) -> None:  # fmt: skip
        self.artifact = artifact
        self.target = artifact.id
        self.device = device
        self.inputs = inputs
        self.outputs = outputs
        self.threads = threads
        self._closed = False
        self._open(root / artifact.entry)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._closed:
            raise BundleError(f"session {self.target}: closed")
        checked = check_feeds(feeds, self.inputs)
        try:
            values = self._run(checked)
        except BundleError:
            raise
        except Exception as exc:  # the runtime's own message, with the artifact named
            raise BundleError(f"{self.target}: the runtime refused the inputs: {exc}") from None
        return dict(zip(self.output_names, values))

    def close(self) -> None:
        self._closed = True
        self._release()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.target} on {self.device}>"

    def _match_outputs(self, runtime_names: list[list[str]]) -> list[int]:
        """Index of each declared output among the runtime's outputs: by name, else (same
        count) by position."""
        index = []
        for name in self.output_names:
            hits = [i for i, names in enumerate(runtime_names) if name in names]
            index.append(hits[0] if hits else -1)
        if -1 in index:
            if len(runtime_names) != len(self.output_names):
                raise BundleError(
                    f"{self.artifact.entry}: outputs {runtime_names} do not match the "
                    f"manifest's outputs {self.output_names}"
                )
            return list(range(len(runtime_names)))
        return index

    def _open(self, path: Path) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _release(self) -> None:
        pass


class OnnxRuntimeSession(Session):
    backend = "onnxruntime"

    def _open(self, path: Path) -> None:
        import onnxruntime as ort

        providers = {
            "CUDA": ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "TENSORRT": [
                "TensorrtExecutionProvider",
                "CUDAExecutionProvider",
                "CPUExecutionProvider",
            ],  # fmt: skip
            "CPU": ["CPUExecutionProvider"],
        }[self.device]
        available = ort.get_available_providers()
        try:
            options = ort.SessionOptions()
            if self.threads is not None:
                options.intra_op_num_threads = self.threads
            self._session = ort.InferenceSession(
                str(path), options, providers=[p for p in providers if p in available]
            )
        except Exception as exc:
            raise BundleError(f"{path}: onnxruntime cannot load it: {exc}") from None
        active = self._session.get_providers()
        if self.device != "CPU" and active and active[0] == "CPUExecutionProvider":
            # ORT falls back to the CPU (with a warning) when a GPU provider cannot start,
            # e.g. CUDA libraries missing: say where it really runs
            self.device = "CPU"
        self._order = self._match_outputs([[o.name] for o in self._session.get_outputs()])
        names = [o.name for o in self._session.get_outputs()]
        self._fetch = [names[i] for i in self._order]

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(self._fetch, feeds)

    def _release(self) -> None:
        self._session = None


class OpenVinoSession(Session):
    backend = "openvino"

    def _open(self, path: Path) -> None:
        import openvino as ov

        try:
            core = ov.Core()
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, self.device, self._config())
        except Exception as exc:
            raise BundleError(f"{path}: openvino cannot load it on {self.device}: {exc}") from None
        self._order = self._match_outputs([sorted(o.get_names()) for o in self._compiled.outputs])
        self._request = self._compiled.create_infer_request()

    def _config(self) -> dict[str, str]:
        """The compile settings nnship validated the artifact with: float math pinned to f32
        except for "bf16" artifacts (on a CPU with avx512_bf16/AMX, OpenVINO's CPU plugin
        otherwise runs float layers in bf16 and an FP32 artifact drifts ~1e-2 from its stored
        outputs; the GPU plugin defaults to f16), and the latency hint."""
        plugin = self.device.split(".")[0].split(":")[0]
        if plugin not in ("CPU", "GPU"):
            return {}  # NPU/AUTO/...: the plugin's own choice
        precision = "bf16" if self.artifact.precision == "bf16" else "f32"
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if self.threads is not None and plugin == "CPU":
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        return config

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = self._request.infer(feeds)
        outputs = self._compiled.outputs
        # copies: the request reuses its output buffers on the next call
        return [np.array(results[outputs[i]], copy=True) for i in self._order]

    def _release(self) -> None:
        self._request = None
        self._compiled = None


def open_session(artifact: ArtifactInfo, root: Path, inputs: tuple[TensorInfo, ...],
                 outputs: tuple[TensorInfo, ...], device: str | None,
                 threads: int | None = None) -> Session:  # fmt: skip
    from .targets import runtime_info

    def devices(package: str) -> tuple[str, ...]:
        info = runtime_info(package)
        assert info is not None, "choose_artifact only returns runnable artifacts"
        return info.devices

    if artifact.backend == "openvino":
        have = devices("openvino")
        if device is None:
            # the device it was validated on when this machine has it, else the CPU plugin
            validated = artifact.device
            device = validated if validated and _openvino_has(have, validated) else "CPU"
        elif not _openvino_has(have, device):
            raise BundleError(f"device {device!r}: OpenVINO here offers {list(have)}")
        return OpenVinoSession(artifact, root, inputs, outputs, device, threads)
    providers = devices("onnxruntime")
    if artifact.backend == "tensorrt":
        return OnnxRuntimeSession(artifact, root, inputs, outputs, device or "TENSORRT", threads)
    if device is None:
        device = "CUDA" if "CUDAExecutionProvider" in providers else "CPU"
    device = device.upper()
    if device not in ("CPU", "CUDA"):
        raise BundleError(f"device {device!r}: onnxruntime artifacts run on CPU or CUDA")
    if device == "CUDA" and "CUDAExecutionProvider" not in providers:
        raise BundleError(f"device 'CUDA': onnxruntime here offers {list(providers)}")
    return OnnxRuntimeSession(artifact, root, inputs, outputs, device, threads)


def _openvino_has(devices: tuple[str, ...], device: str) -> bool:
    """ "GPU" matches "GPU.0"; virtual devices (AUTO:GPU,CPU, HETERO, MULTI) are OpenVINO's."""
    if device.split(":")[0] in ("AUTO", "HETERO", "MULTI"):
        return True
    return any(d == device or d.split(".")[0] == device for d in devices)
