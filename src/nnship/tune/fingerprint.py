"""The machine a trial's latencies were measured on (CPU model, ISA flags, cores, runtimes).

Latency is only comparable between trials of one fingerprint: the Pareto fronts are grouped by
it and `nnship tune show` says when a folder holds several. It is the report's machine
identity (`nnship.core.environment.machine_identity`), in the tuner's record form.
"""

from __future__ import annotations

from nnship.core.environment import machine_identity
from nnship.tune.records import Fingerprint

__all__ = ["machine_fingerprint"]


def machine_fingerprint() -> Fingerprint:
    """This process's fingerprint; `id` is the machine identity's short hash."""
    identity = machine_identity()
    return Fingerprint(
        id=identity.id,
        cpu=identity.cpu_model,
        flags=list(identity.cpu_flags),
        cores=identity.usable_cpus,
        runtimes=dict(identity.runtime_versions),
    )
