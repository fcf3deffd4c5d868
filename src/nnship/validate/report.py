"""The validation report: pydantic models, JSON (the source of truth) + Markdown on disk.

`Report.save(path)` writes `report.json` atomically; `nnship.validate.render.markdown.
save_with_markdown` also writes `report.md` beside it.
`Report.load(path)` refuses other schema versions and summarizes validation errors naming
the fields at fault. Non-finite floats (NaN from a broken candidate) are written as JSON `null`;
SQNR of identical outputs is `null` with `exact_match: true` (infinite).
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import nnship
from nnship.core.environment import Environment
from nnship.core.errors import ReportError
from nnship.core.fileio import write_json_atomic
from nnship.metrics.results import (
    ClassificationMetrics,
    LatencyStats,
    MemoryStats,
    OutputMetrics,
)
from nnship.metrics.task.config import PRIMARY

SCHEMA_VERSION = 1
REPORT_KIND = "nnship-report"


class _Model(BaseModel):
    # extra="forbid" catches typos in hand-edited reports; `extra: dict` fields stay open.
    model_config = ConfigDict(extra="forbid")


class GateVerdict(_Model):
    gate: str
    row: str
    threshold: float
    value: float | None
    passed: bool
    detail: str = ""


class LayerDrift(_Model):
    """Per-layer drift of one artifact (filled by `nnship.validate.explain.layers`)."""

    artifact: str
    layer: str
    onnx_node: str | None = None
    torch_module: str | None = None
    sqnr_db: float | None = None
    cosine: float | None = None
    op_type: str | None = None
    tensor: str | None = None
    """The float tensor compared (the layer's output)."""
    input_sqnr_db: float | None = None
    """dB; SQNR of the layer's worst input (None: exact, i.e. infinite)."""
    local_sqnr_db: float | None = None
    """dB; SQNR of the noise this layer adds itself (the ranking key; None: none added)."""
    matched_by: str | None = None
    """How the tensor was found in the artifact: "name", "qdq", "node-name" or "order"."""


DEFAULT_SUGGEST_MARGIN_DB = 10.0
"""How far (dB) below the median a layer's added-noise SQNR must lie to be an outlier."""


def outlier_layers(
    layers: list[LayerDrift], margin_db: float = DEFAULT_SUGGEST_MARGIN_DB
) -> set[str]:
    """Names (`LayerDrift.layer`) of the layers whose added-noise SQNR lies more than
    `margin_db` (default 10 dB) below the median over layers that add noise."""
    noisy = [d.local_sqnr_db for d in layers if d.local_sqnr_db is not None]
    if not noisy:
        return set()
    median = statistics.median(noisy)
    return {
        d.layer
        for d in layers
        if d.local_sqnr_db is not None and d.local_sqnr_db < median - margin_db
    }


TASK_SKIPPED = "task_metric_skipped"
"""`Row.extra` key: why a candidate has no task metric values (it produced NaN/Inf)."""
TASK_EXAMPLES = "task_metric_examples"
"""`Row.extra` key: a few decodes that differ from the baseline's (sequence metrics)."""


class Row(_Model):
    """One runner's results: the baseline or a candidate artifact."""

    label: str
    runner: str = ""
    backend: str = ""
    precision: str = ""
    device: str = ""
    path: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    source: str = "run"
    """"run" (executed here) or "saved:<file>" (outputs replayed from a saved run)."""
    outputs: list[OutputMetrics] = Field(default_factory=list)
    classification: ClassificationMetrics | None = None
    task_metrics: dict[str, float] = Field(default_factory=dict)
    """The task metric's values (`[validate.metric]`), by name: against the baseline for a
    candidate; for the baseline itself only those read against labels (e.g. `accuracy`)."""
    latency: list[LatencyStats] = Field(default_factory=list)
    cold_start_ms: float | None = None
    load_memory: MemoryStats | None = None
    run_memory: MemoryStats | None = None
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)

    def latency_at(self, batch_size: int | None = None) -> LatencyStats | None:
        """Latency at `batch_size` (default: the first measured)."""
        for stats in self.latency:
            if batch_size is None or stats.batch_size == batch_size:
                return stats
        return None

    def worst(self, metric: str, *, lowest: bool = True) -> tuple[float | None, str | None]:
        """Worst value of an output metric over outputs (lowest or highest) and its output."""
        best: tuple[float | None, str | None] = (None, None)
        for out in self.outputs:
            value = getattr(out, metric)
            if value is None:
                continue
            if best[0] is None or (value < best[0] if lowest else value > best[0]):
                best = (value, out.name)
        return best


class ModelInfo(_Model):
    source: str = ""
    fingerprint: str | None = None


class DataInfo(_Model):
    description: str = ""
    fingerprint: str | None = None
    num_samples: int = 0
    has_labels: bool = False


class Report(_Model):
    """Everything one validation found; JSON-serializable, versioned by `schema_version`."""

    kind: str = REPORT_KIND
    schema_version: int = SCHEMA_VERSION
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    nnship_version: str = nnship.__version__
    environment: Environment = Field(default_factory=Environment)
    model: ModelInfo = Field(default_factory=ModelInfo)
    data: DataInfo = Field(default_factory=DataInfo)
    task: str = "auto"
    task_metric: dict[str, Any] | None = None
    """The task metric's configuration (`kind` and its settings), None without one."""
    config: dict[str, Any] = Field(default_factory=dict)
    baseline: Row
    rows: list[Row] = Field(default_factory=list)
    gates: list[GateVerdict] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    """Open, JSON-serializable data other stages attach (quantizer float nodes, pruning stats)."""
    layer_drift: list[LayerDrift] | None = None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.gates)

    @property
    def failed_gates(self) -> list[GateVerdict]:
        return [v for v in self.gates if not v.passed]

    def primary_task_metric(self) -> str | None:
        """The task value shown first and plotted: the family's primary value (`PRIMARY`), for
        a user function the first value it returned; None without a task metric."""
        if self.task_metric is None:
            return None
        primary = PRIMARY.get(str(self.task_metric.get("kind")))
        if primary is not None:
            return primary
        return next((name for row in self.rows for name in row.task_metrics), None)

    def task_metric_names(self) -> list[str]:
        """Every task value any row has, the primary first, then in the order they appear."""
        names: list[str] = []
        for row in [self.baseline, *self.rows]:
            names += [name for name in row.task_metrics if name not in names]
        primary = self.primary_task_metric()
        if primary is not None and primary in names:
            names.remove(primary)
            names.insert(0, primary)
        return names

    def row(self, label: str) -> Row:
        for row in [self.baseline, *self.rows]:
            if row.label == label:
                return row
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        # through pydantic's JSON writer: NaN/Inf become null (json.dumps would write NaN)
        data = json.loads(self.model_dump_json())
        data["passed"] = self.passed
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path | str) -> Path:
        """Write the report's JSON (the source of truth) to `path`, atomically. Renderings
        are written by `nnship.validate.render` (`save_with_markdown` adds `report.md`)."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            raise ReportError(f"Report path '{path}' must end in .json")
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: Path | str) -> Report:
        """Read a report written by `save`; `ReportError` names the file and what is wrong."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ReportError(f"Report '{path}' does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportError(f"Report '{path}' cannot be read: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(
                f"Report '{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                f"{exc.msg}. Is it truncated?"
            ) from exc
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "report") -> Report:
        if not isinstance(data, dict) or data.get("kind", REPORT_KIND) != REPORT_KIND:
            raise ReportError(f'\'{where}\' is not an nnship report (no "kind": "{REPORT_KIND}")')
        version = data.get("schema_version")
        if version is None:
            raise ReportError(f"Report '{where}' has no 'schema_version' field; it is not a report")
        if version != SCHEMA_VERSION:
            age = "newer" if isinstance(version, int) and version > SCHEMA_VERSION else "older"
            raise ReportError(
                f"Report '{where}' has schema_version {version!r} (written by nnship "
                f"{data.get('nnship_version', '?')}), a {age} format than this nnship "
                f"{nnship.__version__} reads (schema_version {SCHEMA_VERSION}). Re-run "
                "`nnship validate` to regenerate it, or use the nnship version that wrote it."
            )
        data = {k: v for k, v in data.items() if k != "passed"}  # derived, written for readers
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ReportError(f"Report '{where}' is corrupt: {summarize_errors(exc)}") from exc


def summarize_errors(exc: ValidationError, limit: int = 5) -> str:
    """'field.path: message' for the first `limit` pydantic errors."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{where}': {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
