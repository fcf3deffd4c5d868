"""The machine a trial's latencies were measured on (CPU model, ISA flags, cores, runtimes).

Latency is only comparable between trials of one fingerprint: the Pareto fronts are grouped by
it and `nnship tune show` says when a folder holds several. Built from the same facts as a
report's environment (`nnship.core.environment`).
"""

from __future__ import annotations

import hashlib
import json
import os

from nnship.tune.records import Fingerprint

__all__ = ["machine_fingerprint"]


def machine_fingerprint() -> Fingerprint:
    """This process's fingerprint; `id` is a short hash of the rest."""
    from nnship.core.environment import _versions, cpu_model_and_flags

    cpu, flags = cpu_model_and_flags()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS/Windows
        cores = os.cpu_count()
    runtimes = _versions()
    text = json.dumps([cpu, flags, cores, runtimes], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Fingerprint(id=digest, cpu=cpu, flags=flags, cores=cores, runtimes=runtimes)
