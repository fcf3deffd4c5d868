"""The self-contained HTML report and `nnship report`."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from nnship.core.errors import ReportError
from nnship.validate.render.html import render_html, render_report_files, write_html
from nnship.validate.report import (
    ClassificationMetrics,
    GateVerdict,
    LatencyStats,
    LayerDrift,
    OutputMetrics,
    Report,
    Row,
)

LABELS = ("onnx/fp32", "onnxruntime/int8", "openvino/int8 <fast>")


def _latency(median_ms: float, seed: int) -> LatencyStats:
    samples = np.random.default_rng(seed).lognormal(np.log(median_ms), 0.2, 50)
    return LatencyStats(
        batch_size=1,
        runs=50,
        warmup_runs=5,
        warmup_stable=True,
        p50_ms=float(np.percentile(samples, 50)),
        p90_ms=float(np.percentile(samples, 90)),
        p99_ms=float(np.percentile(samples, 99)),
        mean_ms=float(samples.mean()),
        std_ms=float(samples.std()),
        min_ms=float(samples.min()),
        max_ms=float(samples.max()),
        cv=float(samples.std() / samples.mean()),
        throughput_per_s=1000.0 / float(samples.mean()),
        samples_ms=[float(s) for s in samples],
    )


def _row(label: str, index: int, accuracy: float, *, latency: bool = True) -> Row:
    return Row(
        label=label,
        size_bytes=100_000 // (index + 1),
        outputs=[]
        if index == 0
        else [OutputMetrics(name="output", baseline_name="output", sqnr_db=30.0 - 10 * index)],
        classification=ClassificationMetrics(
            output="output",
            samples=128,
            accuracy=accuracy,
            top1_agreement=None if index == 0 else 100.0 - index,
            top1_drop=None if index == 0 else 90.0 - accuracy,
        ),
        latency=[_latency(2.0 / (index + 1), index)] if latency else [],
    )


def make_report(*, latency: bool = True, layers: bool = True) -> Report:
    report = Report(
        baseline=_row(LABELS[0], 0, 90.0, latency=latency),
        rows=[_row(LABELS[1], 1, 89.5, latency=latency), _row(LABELS[2], 2, 86.0, latency=latency)],
        gates=[
            GateVerdict(gate="max_top1_drop", row=LABELS[1], threshold=1.0, value=0.5, passed=True),
            GateVerdict(
                gate="max_top1_drop", row=LABELS[2], threshold=1.0, value=4.0, passed=False
            ),
        ],
        notes=["evaluated on <128> samples"],
    )
    if layers:
        report.layer_drift = [
            LayerDrift(
                artifact=LABELS[1],
                layer=f"/features/features.{i}/Conv",
                onnx_node=f"/features/features.{i}/Conv",
                torch_module=f"features.{i}",
                op_type="Conv",
                sqnr_db=20.0 + i,
                local_sqnr_db=10.0 if i == 0 else 40.0 + i,
                cosine=0.99,
            )
            for i in range(6)
        ]
    return report


def test_html_is_self_contained() -> None:
    html = render_html(make_report())
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower()
    assert "url(" not in html.lower()  # no CSS fetches (fonts, images)
    assert html.startswith("<!DOCTYPE html>")


def test_one_svg_per_plot() -> None:
    html = render_html(make_report())
    # latency distribution, accuracy vs latency, per-layer drift of one artifact
    assert html.count("<svg") == 3
    assert html.count("</svg>") == 3
    assert 'id="latency"' in html and 'id="tradeoff"' in html and 'id="layers"' in html


def test_every_artifact_and_gate_verdict_is_shown() -> None:
    html = render_html(make_report())
    for label in LABELS:
        assert label.replace("<", "&lt;").replace(">", "&gt;") in html
    assert "FAILED" in html and 'class="verdict fail"' in html
    assert html.count(">PASS<") == 1 and html.count(">FAIL<") == 1
    assert "<fast>" not in html  # escaped, never markup
    assert "--exclude /features/features.0/Conv" in html  # the outlier layer's suggestion


def test_latency_box_has_one_dot_per_sample() -> None:
    html = render_html(make_report(layers=False))
    assert html.count('class="dot"') == 3 * 50
    assert html.count("<svg") == 2


def test_sections_without_data_say_so() -> None:
    html = render_html(make_report(latency=False, layers=False))
    assert html.count("<svg") == 0
    assert "Latency was not measured" in html
    assert 'id="layers"' not in html


def test_render_report_files_writes_html_and_markdown(tmp_path) -> None:
    path = make_report().save(tmp_path / "report.json")
    html, md = tmp_path / "out" / "report.html", tmp_path / "out" / "report.md"
    render_report_files(path, html=html, markdown=md)
    assert html.read_text(encoding="utf-8") == render_html(Report.load(path))
    assert md.read_text(encoding="utf-8").startswith("# nnship validation report: FAILED")
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic: no temporary left behind


def test_corrupt_report_is_refused_and_nothing_written(tmp_path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"kind": "nnship-report", "schema_version": 1, "baseline": ', "utf-8")
    out = tmp_path / "report.html"
    with pytest.raises(ReportError, match="report.json"):
        render_report_files(path, html=out)
    assert not out.exists()


def test_cli_report_renders_and_refuses_corrupt(run_cli, tmp_path) -> None:
    path = make_report().save(tmp_path / "report.json")
    out = tmp_path / "report.html"
    proc = run_cli("report", path, "--html", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").count("<svg") == 3
    printed = run_cli("report", path)
    assert printed.returncode == 0 and "## Summary" in printed.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "nnship-report", "schema_version": 1}', "utf-8")
    failed = run_cli("report", bad, "--html", tmp_path / "bad.html")
    assert failed.returncode == 2
    assert "bad.json" in failed.stderr and "corrupt" in failed.stderr
    assert not (tmp_path / "bad.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_browser_renders_the_plots(tmp_path) -> None:
    from skimage.io import imread

    page = write_html(make_report(), tmp_path / "report.html")
    png = tmp_path / "report.png"
    args = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2400",
    ]
    subprocess.run(
        [*args, f"--screenshot={png}", page.resolve().as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [*args, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert dom.count("<svg") == 3
    image = imread(png)[..., :3].astype(int)
    # the red highlight of the outlier layer's bar (#d62728) is painted
    red = (abs(image[..., 0] - 0xD6) < 12) & (abs(image[..., 1] - 0x27) < 12)
    assert red.sum() > 500
    # the latency boxes of the three artifacts (grey baseline, blue, orange) are painted
    orange = (abs(image[..., 0] - 0xF5) < 20) & (abs(image[..., 1] - 0x85) < 20)
    assert orange.sum() > 50
