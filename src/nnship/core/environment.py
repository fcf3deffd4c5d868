"""Where a report was measured: CPU model and flags, OS, runtime versions, thread counts.

`hardware_id` hashes what decides latency (machine, CPU model, the ISA flags below, logical
CPUs, GPU names); two reports with different ids must not have their latencies compared.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import nnship
from nnship.core.fileio import stable_hash

# ISA extensions that change which kernels runtimes pick (and so their latency).
_RELEVANT_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimddp",
    "sve",
    "i8mm",
    "bf16",
)
CAPABILITY_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""The flags a report's capability line shows: they decide which INT8/bf16 kernels exist."""
_RUNTIMES = ("torch", "numpy", "onnx", "onnxruntime", "openvino", "tensorrt", "nncf")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Environment(BaseModel):
    """The machine and software a report was measured on."""

    model_config = ConfigDict(extra="allow")

    hostname: str = ""
    os: str = ""
    python: str = ""
    machine: str = ""
    cpu_model: str = ""
    cpu_flags: list[str] = Field(default_factory=list)
    logical_cpus: int | None = None
    usable_cpus: int | None = None
    gpus: list[str] = Field(default_factory=list)
    runtime_versions: dict[str, str] = Field(default_factory=dict)
    nnship_version: str = ""
    threads: dict[str, Any] = Field(default_factory=dict)
    hardware_id: str = ""
    openvino_capabilities: list[str] | None = None
    """OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU ("FP32", "BF16", "INT8", ...); None when
    OpenVINO is not installed."""

    def capabilities(self) -> str:
        """One line: the CPU's INT8/bf16-relevant flags (yes/no) and OpenVINO's capabilities."""
        flags = ", ".join(f"{f} {'yes' if f in self.cpu_flags else 'no'}" for f in CAPABILITY_FLAGS)
        if self.openvino_capabilities is None:
            return f"{flags}; OpenVINO not installed"
        caps = ", ".join(self.openvino_capabilities) or "none reported"
        bf16 = "available" if "BF16" in self.openvino_capabilities else "not available"
        return f"{flags}; OpenVINO CPU: {caps} (bf16 precision {bf16})"

    def summary(self) -> str:
        """One line: CPU, cores, OS, threads."""
        cpu = self.cpu_model or self.machine or "unknown CPU"
        gpu = f", {', '.join(self.gpus)}" if self.gpus else ""
        threads = self.threads.get("configured")
        t = f", {threads} threads" if threads else ""
        return f"{cpu} ({self.usable_cpus or '?'} usable CPUs{gpu}{t}), {self.os}"


@dataclass(frozen=True)
class MachineIdentity:
    """What latency figures are comparable within: the CPU model, its ISA flags that matter
    for inference, the cores this process may use and the runtime versions. `id` is a short
    stable hash of them (the tuner groups its Pareto fronts by it; a report's `Environment`
    holds the same facts)."""

    cpu_model: str
    cpu_flags: tuple[str, ...]
    usable_cpus: int | None
    runtime_versions: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        facts = [
            self.cpu_model,
            list(self.cpu_flags),
            self.usable_cpus,
            dict(self.runtime_versions),
        ]
        return stable_hash(facts, 12)


def machine_identity() -> MachineIdentity:
    """This process's `MachineIdentity`, read once here for reports and the tuner alike."""
    cpu_model, flags = _cpu_info()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS/Windows
        usable = os.cpu_count()
    return MachineIdentity(cpu_model, tuple(flags), usable, tuple(sorted(_versions().items())))


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """(CPU model name, the ISA flags of `_RELEVANT_FLAGS` it has), from /proc/cpuinfo."""
    return _cpu_info()


def _cpu_info() -> tuple[str, list[str]]:
    model, flags = "", list[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = value.split()
    except OSError:  # not Linux: fall back to what platform knows
        pass
    model = model or platform.processor() or platform.machine()
    return model, sorted(f for f in set(flags) if f in _RELEVANT_FLAGS)


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in _RUNTIMES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _openvino_capabilities() -> list[str] | None:
    from importlib.util import find_spec

    if find_spec("openvino") is None:
        return None
    try:
        import openvino

        caps = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        return [str(c) for c in caps]
    except Exception:  # a broken OpenVINO install must not break a report
        return []


def _gpus() -> list[str]:
    torch = sys.modules.get("torch")  # never import torch just to ask
    try:
        if torch is not None and torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken CUDA set-up should not break a report
        return []
    return []


def thread_settings(configured: int | None = None) -> dict[str, Any]:
    """Thread counts in force: the configured value, torch's intra-op threads, env vars."""
    info: dict[str, Any] = {"configured": configured}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_intra_op"] = torch.get_num_threads()
    for var in _THREAD_VARS:
        if var in os.environ:
            info[var] = os.environ[var]
    return info


def hardware_id(
    machine: str, cpu_model: str, flags: list[str], cpus: int | None, gpus: list[str]
) -> str:
    text = "|".join([machine, cpu_model, ",".join(flags), str(cpus), ",".join(gpus)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def capture_environment(threads: int | None = None) -> Environment:
    """Describe this machine and process now. `threads` is the thread count the user asked for."""
    identity = machine_identity()
    cpu_model, flags = identity.cpu_model, list(identity.cpu_flags)
    gpus = _gpus()
    machine = platform.machine()
    return Environment(
        hostname=platform.node(),
        os=platform.platform(),
        python=platform.python_version(),
        machine=machine,
        cpu_model=cpu_model,
        cpu_flags=flags,
        logical_cpus=os.cpu_count(),
        usable_cpus=identity.usable_cpus,
        gpus=gpus,
        runtime_versions=dict(identity.runtime_versions),
        nnship_version=nnship.__version__,
        threads=thread_settings(threads),
        hardware_id=hardware_id(machine, cpu_model, flags, os.cpu_count(), gpus),
        openvino_capabilities=_openvino_capabilities(),
    )


def hardware_differences(a: Environment, b: Environment) -> list[str]:
    """Human-readable differences that make latencies incomparable (empty when comparable)."""
    diffs = []
    for field in ("machine", "cpu_model", "logical_cpus", "gpus", "cpu_flags"):
        va, vb = getattr(a, field), getattr(b, field)
        if va != vb:
            diffs.append(f"{field}: {va} vs {vb}")
    if not diffs and a.hardware_id != b.hardware_id:
        diffs.append(f"hardware_id: {a.hardware_id} vs {b.hardware_id}")
    return diffs
