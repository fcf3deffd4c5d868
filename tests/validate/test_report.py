"""Report JSON round trip, Markdown, schema versions and corrupt files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _validate_helpers import classification_data, linear_classifier

from nnship.core.errors import ReportError
from nnship.validate import Gates, LatencyConfig, Report, ValidateConfig, validate
from nnship.validate.render.markdown import report_markdown, save_with_markdown
from nnship.validate.report import SCHEMA_VERSION, LayerDrift


@pytest.fixture(scope="module")
def report() -> Report:
    _, _, make = linear_classifier()
    data = classification_data(labels=np.arange(40) % 4)
    config = ValidateConfig(
        gates=Gates(min_cosine=0.999, min_top1_agreement=90),
        latency=LatencyConfig(runs=5, max_warmup_runs=2, min_warmup_runs=1, stable_window=2),
    )
    return validate(make(), {"noisy": make(noise=0.3)}, data, config=config)


def test_save_writes_json_only(tmp_path, report: Report) -> None:
    path = report.save(tmp_path / "report.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert Report.load(path) == report


def test_round_trip_keeps_everything(tmp_path, report: Report) -> None:
    report.extra["quantize"] = {"float_nodes": [{"name": "Softmax_1", "reason": "sensitive"}]}
    report.layer_drift = [LayerDrift(artifact="noisy", layer="fc", sqnr_db=31.5, cosine=0.999)]
    path = save_with_markdown(report, tmp_path / "report.json")
    assert (tmp_path / "report.md").is_file()
    loaded = Report.load(path)
    assert loaded == report
    assert loaded.row("noisy").latency[0].samples_ms == report.row("noisy").latency[0].samples_ms
    assert json.loads(path.read_text())["passed"] == report.passed
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


def test_markdown_shows_rows_gates_and_latency(report: Report) -> None:
    md = report_markdown(report)
    assert "| noisy |" in md and "## Gates" in md and "## Latency (ms)" in md
    assert ("PASSED" in md) == report.passed
    assert "min_cosine" in md


@pytest.mark.parametrize("version, word", [(SCHEMA_VERSION + 1, "newer"), (0, "older")])
def test_other_schema_versions_are_refused(tmp_path, report: Report, version, word) -> None:
    data = report.to_dict()
    data["schema_version"] = version
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError, match=rf"r.json.*schema_version {version}.*{word}"):
        Report.load(path)


def test_not_json_is_refused_with_position(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"kind": "nnship-report", "schema_version": 1, "rows": [')
    with pytest.raises(ReportError, match=r"r.json' is not valid JSON \(line 1"):
        Report.load(path)


def test_missing_and_wrong_fields_are_named(tmp_path, report: Report) -> None:
    data = report.to_dict()
    del data["baseline"]
    data["rows"][0]["latency"][0]["p50_ms"] = "fast"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ReportError, match=r"corrupt.*field 'baseline'.*field 'rows.0.latency.0.p50_ms'"
    ):
        Report.load(path)


def test_other_json_is_not_a_report(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(ReportError, match="not an nnship report"):
        Report.load(path)
    with pytest.raises(ReportError, match="does not exist"):
        Report.load(tmp_path / "missing.json")


def test_save_requires_json_suffix(tmp_path, report: Report) -> None:
    with pytest.raises(ReportError, match=".json"):
        report.save(tmp_path / "report.txt")


def test_environment_is_recorded(report: Report) -> None:
    env = report.environment
    assert env.cpu_model and env.hardware_id and env.os and env.usable_cpus
    assert "numpy" in env.runtime_versions and env.nnship_version
    assert "configured" in env.threads
