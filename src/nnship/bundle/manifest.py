"""The bundle's `manifest.json` (contract B of this session, docs/bundle.md): pydantic models.

A bundle folder is `manifest.json` plus the files it lists. The manifest is the one source of
truth: what the bundle holds (every file with its SHA-256 and size), what each artifact needs to
run, what the build measured for it (and on which machine), and what a smoke inference on the
stored sample inputs must give.

Versioning rule: `schema_version` is an integer bumped on every change a reader of the previous
version could misread (a renamed or removed field, a changed meaning). Adding an optional field
is not a bump. A reader refuses a manifest whose version is newer than its own
(`SCHEMA_VERSION`) with an error telling the user to upgrade nnship; older versions are read
as long as this module knows them.

`nnship.runtime` reads the same file without pydantic (stdlib + numpy only); this module is
what the build side writes and `nnship bundle verify` checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nnship.core.errors import BundleError
from nnship.recipe.bundle_section import Preprocessing

SCHEMA_VERSION = 1
"""The manifest schema this nnship writes and the newest it reads."""

MANIFEST_NAME = "manifest.json"

Dim = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Model):
    """One model input or output: symbolic dims are strings ("batch")."""

    name: str
    shape: list[Dim]
    dtype: str = "float32"


class FileEntry(_Model):
    """A file of the bundle: its path relative to the bundle folder (POSIX), SHA-256, size."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class RuntimeRequirement(_Model):
    package: str
    """The pip package that runs the artifact ("onnxruntime", "openvino", "tensorrt")."""
    min_version: str | None = None
    """The oldest version known to run it: the version the build compiled/validated with."""


class Tolerance(_Model):
    """How far a re-run of the artifact on the sample inputs may be from `expected`:
    `|got - expected| <= atol + rtol * |expected|` element-wise, or the per-sample cosine
    at least `min_cosine` (see docs/bundle.md for how the numbers are derived)."""

    atol: float = Field(ge=0)
    rtol: float = Field(ge=0)
    min_cosine: float = Field(ge=-1, le=1)


class Validation(_Model):
    """What the build's report measured for an artifact, and where."""

    metrics: dict[str, Any] = Field(default_factory=dict)
    latency_ms: dict[str, float | None] = Field(default_factory=dict)
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    """The machine the latency was measured on (CPU, ISA flags, cores, runtime versions)."""
    gates: dict[str, Any] = Field(default_factory=dict)
    """`{"passed": bool, "verdicts": [...]}` for this artifact."""
    size_bytes: int | None = None


class ArtifactEntry(_Model):
    """One deployable artifact of the bundle."""

    id: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_.]+$")
    """`<backend>/<precision>`, e.g. "openvino/int8"; its folder is `artifacts/<backend>-<precision>/`."""
    backend: Literal["onnxruntime", "openvino", "tensorrt"]
    precision: str
    device: str = "CPU"
    runtime: RuntimeRequirement
    entry: str
    """The file a runtime opens (`.onnx`, `.xml`; TensorRT: the QDQ ONNX the kit builds from)."""
    files: list[FileEntry]
    validation: Validation | None = None
    tolerance: Tolerance | None = None
    """None when no expected outputs are stored (TensorRT: engines are built on the device)."""
    expected: str | None = None
    """`samples/expected.<backend>-<precision>.npz`, keyed by output name."""
    build_kit: dict[str, Any] | None = None
    """TensorRT only: `{"script": ..., "trtexec": "<command>", "profiles": [...]}`."""

    @property
    def folder(self) -> str:
        return "artifacts/" + self.id.replace("/", "-")


class Samples(_Model):
    inputs: str
    """`samples/inputs.npz`, keyed by input name (plain `np.savez`, no pickle)."""
    count: int = Field(ge=0)
    source: str | None = None
    """Where the samples were taken from: "evaluation", "calibration" or "synthetic"."""


class Manifest(_Model):
    """`manifest.json`: UTF-8, keys sorted, indent 2, trailing newline."""

    schema_version: int
    nnship_version: str
    name: str
    model_version: str
    """`<recipe name>@<short hash of the input hashes>`."""
    built_at: str | None = None
    """The only wall-clock field: ISO 8601 UTC from SOURCE_DATE_EPOCH, else null."""
    recipe: dict[str, Any] = Field(default_factory=dict)
    input_hashes: dict[str, str | None] = Field(default_factory=dict)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: Preprocessing | None = None
    labels: list[str] | None = None
    artifacts: list[ArtifactEntry]
    samples: Samples | None = None
    files: list[FileEntry]
    """Every file of the bundle except manifest.json, sorted by path."""

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        check_schema_version(value)
        return value

    def artifact(self, artifact_id: str) -> ArtifactEntry:
        for entry in self.artifacts:
            if entry.id == artifact_id:
                return entry
        offered = ", ".join(a.id for a in self.artifacts) or "none"
        raise BundleError(
            f"{MANIFEST_NAME}: no artifact '{artifact_id}' (the bundle has: {offered})"
        )

    def to_json(self) -> str:
        """The canonical bytes: sorted keys, indent 2, trailing newline (stable for equal data)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def check_schema_version(value: Any) -> int:
    """Raise `BundleError` for a version this nnship cannot read."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BundleError(f"{MANIFEST_NAME}: schema_version {value!r} is not a known version")
    if value > SCHEMA_VERSION:
        raise BundleError(
            f"{MANIFEST_NAME} schema_version {value} is newer than this nnship supports "
            f"({SCHEMA_VERSION}): upgrade nnship"
        )
    return value


def parse_manifest(data: dict[str, Any], *, where: str = MANIFEST_NAME) -> Manifest:
    """Validate a manifest's data; every problem is a `BundleError` naming the field."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: not a JSON object")
    if "schema_version" not in data:
        raise BundleError(f"{where}: missing field 'schema_version'")
    check_schema_version(data["schema_version"])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BundleError(f"{where}: {problems}") from None


def load_manifest(bundle_dir: Path | str) -> Manifest:
    """Read and validate `<bundle_dir>/manifest.json`."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"'{bundle_dir}' is not a bundle folder (no such directory)")
    if not path.is_file():
        raise BundleError(
            f"'{path}' is missing: '{bundle_dir}' is not a finished bundle "
            "(manifest.json is written last)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"'{path}' is not valid JSON: {exc}") from None
    return parse_manifest(data, where=str(path))
