"""`tune.html` from a tune folder's pareto.json + trials.jsonl: a parseable self-contained page,
one front chart per (backend, precision, fingerprint) group, history and importances."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nnship.core.errors import NnshipError
from nnship.tune.html import parameter_importances, render_tune_html, write_tune_html
from nnship.tune.records import (
    ArtifactMetrics,
    Fingerprint,
    FrontPoint,
    ParetoFile,
    ParetoGroup,
    RelaxedResult,
    TrialRecord,
    append_trial,
)

FP = Fingerprint(id="fp-a", cpu="Test CPU", flags=["avx2"], cores=2, runtimes={"onnxruntime": "1"})


class _Page(HTMLParser):
    """Collects tags, the front sections' charts and every URL-like attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.svgs_in_front: list[int] = []
        self.urls: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "front":
            self.svgs_in_front.append(0)
        if tag == "svg" and self.svgs_in_front and "div" in self.stack:
            self.svgs_in_front[-1] += 1
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        for key in ("href", "src", "xlink:href"):
            if key in attrs:
                self.urls.append(attrs[key])
        if tag not in ("meta", "line", "circle", "rect", "polyline", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass


def _artifact(backend, precision, latency, drop, size, feasible=True) -> ArtifactMetrics:
    return ArtifactMetrics(
        backend=backend,
        precision=precision,
        path=f"trials/x/{backend}/{precision}",
        size_bytes=size,
        latency_ms_p50=latency,
        metrics={"top1_drop": drop, "top1_agreement": 100 - drop},
        feasible=feasible,
        violation=0.0 if feasible else drop - 1.0,
    )


def _trial(number, params, artifacts, fingerprint=FP) -> TrialRecord:
    feasible = [a for a in artifacts if a.feasible]
    best = min(feasible, key=lambda a: a.latency_ms_p50) if feasible else None
    return TrialRecord(
        number=number,
        state="complete" if feasible else "infeasible",
        params=params,
        artifacts=artifacts,
        objectives={
            "latency_ms": best.latency_ms_p50 if best else None,
            "size_bytes": best.size_bytes if best else None,
        },
        feasible=bool(feasible),
        stages={"compress": "ran", "export": "reused"},
        fingerprint=fingerprint,
        worker="host-1",
        duration_s=1.5,
        build_dir=f"trials/{number}",
    )


def _point(trial: TrialRecord, artifact: ArtifactMetrics) -> FrontPoint:
    return FrontPoint(
        trial=trial.number,
        latency_ms=artifact.latency_ms_p50,
        retimed_latency_ms=artifact.latency_ms_p50 * 1.02,
        size_bytes=artifact.size_bytes,
        metrics=artifact.metrics,
        path=artifact.path,
        params=trial.params,
    )


@pytest.fixture
def tune_folder(tmp_path) -> Path:
    """Eight trials over prune ratio x method, two backends; latency falls with the ratio."""
    trials = []
    n = 0
    for ratio in (0.0, 0.25, 0.5, 0.75):
        for method in ("entropy", "mse"):
            drop = ratio * 2.0 + (0.1 if method == "mse" else 0.3)
            arts = [
                _artifact(
                    "onnxruntime",
                    "int8",
                    4.0 - 3 * ratio,
                    drop,
                    int(4e6 * (1 - ratio)),
                    feasible=drop <= 1.0,
                ),  # fmt: skip
                _artifact(
                    "openvino",
                    "int8",
                    3.0 - 2 * ratio,
                    drop + 0.05,
                    int(4e6 * (1 - ratio)),
                    feasible=drop + 0.05 <= 1.0,
                ),  # fmt: skip
            ]
            trials.append(_trial(n, {"prune.ratio": ratio, "quantize.method": method}, arts))
            n += 1
    for t in trials:
        append_trial(tmp_path, t)
    groups = []
    for backend in ("onnxruntime", "openvino"):
        front = [
            _point(t, a)
            for t in trials
            for a in t.artifacts
            if a.backend == backend and a.feasible and t.params["quantize.method"] == "mse"
        ]
        groups.append(
            ParetoGroup(backend=backend, precision="int8", fingerprint="fp-a", front=front)
        )
    pareto = ParetoFile(
        objectives=["latency", "size"],
        constraints={"max_top1_drop": 1.0},
        groups=groups,
        fingerprints={"fp-a": FP},
        retimed=True,
    )
    (tmp_path / "pareto.json").write_text(pareto.model_dump_json(indent=2), encoding="utf-8")
    return tmp_path


def test_the_page_parses_with_one_chart_per_group_and_no_network(tune_folder, tmp_path):
    out = write_tune_html(tune_folder, tmp_path / "tune.html")
    text = out.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.svgs_in_front == [1, 1]  # onnxruntime/int8 and openvino/int8
    assert {"fronts", "history", "importances", "trials"} <= set(page.sections)
    assert page.urls == []
    assert not re.search(r"https?://", text)
    assert "onnxruntime/int8" in text and "openvino/int8" in text
    assert "top-1 drop, points (lower = better)" in text  # the constraint's metric is the y axis
    assert "different machines" not in text  # one fingerprint: no warning


def test_each_front_point_is_drawn_and_tabled(tune_folder):
    text = render_tune_html(tune_folder)
    # 2 front points per backend (ratios 0 and 0.25 with mse), each with a hover title
    assert len(re.findall(r"<title>trial \d+: [\d.]+ ms, top-1", text)) >= 4
    assert text.count('<div class="front">') == 2


def test_fingerprints_that_differ_get_a_note_and_their_own_group(tune_folder):
    other = Fingerprint(id="fp-b", cpu="Other CPU", flags=["avx512f"], cores=8)
    trial = _trial(8, {"prune.ratio": 0.0, "quantize.method": "mse"},
                   [_artifact("onnxruntime", "int8", 1.0, 0.1, 4_000_000)], fingerprint=other)  # fmt: skip
    append_trial(tune_folder, trial)
    pareto = ParetoFile.model_validate_json((tune_folder / "pareto.json").read_text())
    pareto.groups.append(
        ParetoGroup(
            backend="onnxruntime",
            precision="int8",
            fingerprint="fp-b",
            front=[_point(trial, trial.artifacts[0])],
        )  # fmt: skip
    )
    pareto.fingerprints["fp-b"] = other
    (tune_folder / "pareto.json").write_text(pareto.model_dump_json(), encoding="utf-8")
    text = render_tune_html(tune_folder)
    assert "2 different machines" in text
    assert text.count('<div class="front">') == 3


def test_a_relaxed_result_shows_the_closest_trial(tune_folder):
    pareto = ParetoFile.model_validate_json((tune_folder / "pareto.json").read_text())
    relaxed = RelaxedResult(
        closest_trial=3, missed_by={"max_top1_drop": 0.25}, groups=pareto.groups
    )
    pareto = pareto.model_copy(update={"groups": [], "relaxed": relaxed})
    (tune_folder / "pareto.json").write_text(pareto.model_dump_json(), encoding="utf-8")
    text = render_tune_html(tune_folder)
    assert "No trial met the constraints" in text and "trial 3" in text
    assert text.count('<div class="front">') == 2


def test_importances_from_trials_jsonl_rank_the_parameter_that_moves_latency(tune_folder):
    importances, source = parameter_importances(tune_folder)
    assert "trials.jsonl" in source  # no study.db in this folder
    assert set(importances) == {"prune.ratio", "quantize.method"}
    assert importances["prune.ratio"] > importances["quantize.method"]


def test_a_folder_without_pareto_json_is_an_error_naming_it(tmp_path):
    with pytest.raises(NnshipError, match="pareto.json"):
        render_tune_html(tmp_path)
