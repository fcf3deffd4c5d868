"""Which runtimes this device has, and which of a bundle's artifacts runs here.

The runtimes are imported lazily, only when asked about: `import nnship.runtime` loads neither.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass, field

from .errors import BundleError
from .manifest import ArtifactInfo

# `target="auto"` prefers OpenVINO (its CPU plugin runs INT8 IRs well on x86 and it drives
# Intel GPUs/NPUs), then ONNX Runtime; TensorRT artifacts need an engine built on the device
# (`build_engine.py` in the bundle) and are never picked automatically.
BACKEND_ORDER = ("openvino", "onnxruntime")
PRECISION_ORDER = ("int8", "fp16", "fp32")

_RUNS_ON = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "onnxruntime"}


@dataclass(frozen=True)
class RuntimeInfo:
    """An installed runtime: its version and the devices/providers it offers here."""

    package: str
    version: str | None
    devices: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.package} (unusable: {self.error})"
        return f"{self.package} {self.version} ({', '.join(self.devices) or 'no devices'})"


_CACHE: dict[str, RuntimeInfo | None] = {}


def runtime_info(package: str) -> RuntimeInfo | None:
    """The installed runtime `package` ("onnxruntime" or "openvino"), None when not installed."""
    if package in _CACHE:
        return _CACHE[package]
    info: RuntimeInfo | None
    if importlib.util.find_spec(package) is None:
        info = None
    else:
        try:
            module = importlib.import_module(package)
            version = getattr(module, "__version__", None)
            if package == "onnxruntime":
                devices = tuple(module.get_available_providers())
            elif package == "openvino":
                devices = tuple(module.Core().available_devices)
            else:
                devices = ()
            info = RuntimeInfo(package, version, devices)
        except Exception as exc:  # a broken install is "not usable", said once, not a crash
            info = RuntimeInfo(package, None, (), f"{type(exc).__name__}: {exc}")
    _CACHE[package] = info
    return info


def installed_runtimes() -> dict[str, RuntimeInfo]:
    """Every runtime nnship.runtime can drive that is installed here."""
    out = {}
    for package in BACKEND_ORDER:
        info = runtime_info(package)
        if info is not None:
            out[package] = info
    return out


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: "2024.4.1-16618-..." -> (2024, 4, 1)."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _older(installed: str, required: str) -> bool:
    have, need = version_tuple(installed), version_tuple(required)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) < need + (0,) * (width - len(need))


def why_not_runnable(artifact: ArtifactInfo) -> str | None:
    """None when `artifact` can run on this device, else the reason."""
    package = _RUNS_ON.get(artifact.backend)
    if package is None:
        return f"backend {artifact.backend!r} is not one nnship.runtime can run"
    info = runtime_info(package)
    if info is None:
        return f"{package} is not installed (pip install 'nnship-runtime[{package}]')"
    if info.error:
        return f"{package} cannot be imported: {info.error}"
    if artifact.backend == "tensorrt" and "TensorrtExecutionProvider" not in info.devices:
        return (
            "TensorRT engines are built on the device from the bundle's build kit "
            "(see its README); onnxruntime here has no TensorrtExecutionProvider"
        )
    if artifact.min_version and info.version and _older(info.version, artifact.min_version):
        return (
            f"needs {package} >= {artifact.min_version} "
            f"(artifacts[].runtime.min_version), installed {info.version}"
        )
    return None


def device_summary() -> str:
    runtimes = installed_runtimes()
    if not runtimes:
        return "no runtime installed (pip install 'nnship-runtime[onnxruntime]' or '[openvino]')"
    return "; ".join(info.describe() for info in runtimes.values())


def choose_artifact(artifacts: tuple[ArtifactInfo, ...], target: str) -> ArtifactInfo:
    """The artifact `target` names ("openvino/int8"), or for "auto" the best one that runs here:
    artifacts whose validation gates passed before those that failed, then by backend
    (OpenVINO, then ONNX Runtime), then precision (INT8, FP16, FP32). A `target` of just a backend ("onnxruntime") picks among its artifacts."""
    offered = ", ".join(a.id for a in artifacts)
    if target != "auto" and "/" in target:
        match = [a for a in artifacts if a.id == target]
        if not match:
            raise BundleError(
                f"target {target!r}: not in this bundle; it offers {offered}; "
                f"this device has {device_summary()}"
            )
        reason = why_not_runnable(match[0])
        if reason:
            raise BundleError(
                f"target {target!r} cannot run here: {reason}. The bundle offers {offered}; "
                f"this device has {device_summary()}"
            )
        return match[0]
    pool = [a for a in artifacts if target == "auto" or a.backend == target]
    if not pool:
        raise BundleError(
            f"target {target!r}: the bundle has no artifact of that backend; it offers "
            f"{offered} (or use target='auto' or an exact id)"
        )
    reasons = {a.id: why_not_runnable(a) for a in pool}
    runnable = [a for a in pool if reasons[a.id] is None]
    if not runnable:
        detail = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        raise BundleError(
            f"target {target!r}: no artifact of this bundle runs here ({detail}). "
            f"The bundle offers {offered}; this device has {device_summary()}"
        )

    def rank(a: ArtifactInfo) -> tuple[int, int, int]:
        backend = BACKEND_ORDER.index(a.backend) if a.backend in BACKEND_ORDER else 99
        gates = (a.validation or {}).get("gates") or {}
        failed = 1 if gates.get("passed") is False else 0
        prec = PRECISION_ORDER.index(a.precision) if a.precision in PRECISION_ORDER else 99
        return (failed, backend, prec)

    return min(runnable, key=rank)  # min is stable: ties keep the manifest's order
