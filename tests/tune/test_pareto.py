"""Fronts: dominance per (backend, precision, machine), infeasible artifacts left out."""

from __future__ import annotations

from nnship.tune.pareto import compute_pareto
from nnship.tune.records import ArtifactMetrics, Fingerprint, TrialRecord


def _record(number, rows, machine="m1"):
    artifacts = [
        ArtifactMetrics(
            backend=b,
            precision=p,
            path=f"/t/{number}/{b}-{p}",
            sha256=f"{number}{b}{p}",
            latency_ms_p50=lat,
            size_bytes=size,
            feasible=ok,
            violation=0.0 if ok else 1.0,
            missed={} if ok else {"max_top1_drop": 1.0},
        )
        for b, p, lat, size, ok in rows
    ]
    return TrialRecord(
        number=number,
        state="complete",
        artifacts=artifacts,
        feasible=True,
        fingerprint=Fingerprint(id=machine),
    )


def test_dominated_and_infeasible_points_are_not_on_the_front():
    records = [
        _record(0, [("onnxruntime", "int8", 1.0, 100, True)]),
        _record(1, [("onnxruntime", "int8", 2.0, 50, True)]),  # trade-off: on the front
        _record(2, [("onnxruntime", "int8", 2.5, 120, True)]),  # dominated by 0
        _record(3, [("onnxruntime", "int8", 0.5, 10, False)]),  # best but infeasible
    ]
    pareto = compute_pareto(records, ["latency", "size"], {"max_top1_drop": 1.0})
    (group,) = pareto.groups
    assert [p.trial for p in group.front] == [0, 1]
    assert pareto.relaxed is None


def test_groups_never_mix_backends_precisions_or_machines():
    records = [
        _record(0, [("onnxruntime", "int8", 1.0, 100, True), ("openvino", "int8", 3.0, 90, True)]),
        _record(1, [("onnxruntime", "int8", 0.5, 50, True)], machine="m2"),
    ]
    pareto = compute_pareto(records, ["latency"], {})
    keys = [(g.backend, g.precision, g.fingerprint) for g in pareto.groups]
    assert keys == [
        ("onnxruntime", "int8", "m1"),
        ("onnxruntime", "int8", "m2"),
        ("openvino", "int8", "m1"),
    ]
    assert set(pareto.fingerprints) == {"m1", "m2"}
