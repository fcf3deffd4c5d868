"""`Bundle`: a verified bundle folder, and what a device does with it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError
from .manifest import MANIFEST, ArtifactInfo, FileEntry, ManifestInfo, TensorInfo, read_manifest
from .session import Session

_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_files(root: Path, files: tuple[FileEntry, ...]) -> None:
    """Every listed file exists inside `root` with its size and SHA-256 (sizes first: a
    truncated file is reported as such, and cheaply)."""
    real_root = root.resolve()
    for entry in files:
        path = root / entry.path
        if not path.is_file():
            raise BundleError(f"{path}: missing (listed in {MANIFEST} files)")
        if real_root not in path.resolve().parents:
            raise BundleError(f"{path}: points outside the bundle folder")
        size = path.stat().st_size
        if size != entry.size:
            what = "truncated" if size < entry.size else "modified"
            raise BundleError(f"{path}: {what}: {size} bytes, {MANIFEST} lists {entry.size}")
    for entry in files:
        path = root / entry.path
        if _sha256(path) != entry.sha256:
            raise BundleError(f"{path}: modified: its SHA-256 differs from the one in {MANIFEST}")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # a hash-verified file that numpy cannot read: a writer bug
        raise BundleError(f"{path}: not a readable .npz archive: {exc}") from None


@dataclass
class OutputCheck:
    """One output of one smoke-test comparison; `max_abs_error` in the output's units."""

    name: str
    max_abs_error: float
    min_cosine: float | None
    allclose: bool
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SmokeTestResult:
    """The stored sample inputs run through one artifact against its stored outputs."""

    target: str
    device: str
    samples: int
    tolerance: dict[str, float]
    outputs: list[OutputCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "device": self.device, "samples": self.samples,
            "tolerance": self.tolerance, "passed": self.passed,
            "outputs": [o.to_dict() for o in self.outputs],
        }  # fmt: skip

    def summary(self) -> str:
        worst = max((o.max_abs_error for o in self.outputs), default=0.0)
        cos = [o.min_cosine for o in self.outputs if o.min_cosine is not None]
        cos_text = f", min cosine {min(cos):.6f}" if cos else ""
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"{self.target} on {self.device}: {verdict} on {self.samples} sample(s) "
            f"(max |error| {worst:.3g}{cos_text}; tolerance {self.tolerance})"
        )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample cosine over all but axis 0 (two zero vectors: 1, one zero vector: 0), the
    rule of nnship.metrics.drift."""
    a = a.reshape(a.shape[0], -1).astype(np.float64) if a.ndim else a.reshape(1, 1)
    b = b.reshape(b.shape[0], -1).astype(np.float64) if b.ndim else b.reshape(1, 1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((na == 0) & (nb == 0), 1.0, dot / (na * nb))
    return np.where(np.isfinite(cos), cos, 0.0)


def compare_outputs(
    name: str, got: np.ndarray, want: np.ndarray, tol: dict[str, float]
) -> OutputCheck:
    """`got` against `want`, passing when element-wise |got - want| <= atol + rtol * |want|
    (numpy.allclose) or every sample's cosine >= min_cosine (contract B's `tolerance`; a
    re-run of an INT8 artifact on another CPU may round a few values differently, which the
    cosine tolerates). No tolerance given: exact equality."""
    if got.shape != want.shape:
        return OutputCheck(name, float("inf"), None, False, False)
    g, w = got.astype(np.float64), want.astype(np.float64)
    err = float(np.max(np.abs(g - w))) if g.size else 0.0
    close = bool(np.allclose(g, w, atol=tol.get("atol", 0.0), rtol=tol.get("rtol", 0.0)))
    cos = None
    ok_cos = False
    if np.issubdtype(want.dtype, np.floating) and g.size:
        cos = float(_cosines(g, w).min())
        ok_cos = "min_cosine" in tol and cos >= tol["min_cosine"]
    return OutputCheck(name, err, cos, close, close or ok_cos)


class Bundle:
    """A bundle folder whose manifest and every file's size and SHA-256 were checked on load.

    bundle = Bundle.load("dist/resnet")
    model = bundle.session()                    # target="auto"
    logits = model.run({"x": batch})["logits"]
    """

    def __init__(self, root: Path, info: ManifestInfo) -> None:
        self.root = root
        self._info = info

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        """Reads `path/manifest.json` (`path` may also be the manifest itself) and checks its structure and schema version, then every
        file it lists (size, then SHA-256) before any runtime reads one. `BundleError` names the
        file or field at fault."""
        root = Path(path)
        if root.name == MANIFEST and root.is_file():  # the manifest's path for its folder's
            root = root.parent
        info = read_manifest(root)
        verify_files(root, info.files)
        return cls(root, info)

    # -- what the manifest declares ----------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed manifest.json as plain data."""
        return self._info.raw

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def model_version(self) -> str | None:
        return self._info.model_version

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return self._info.inputs

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return self._info.outputs

    @property
    def labels(self) -> list[str] | None:
        return list(self._info.labels) if self._info.labels is not None else None

    @property
    def preprocessing(self):
        """The declared `Preprocessing`, or None."""
        return self._info.preprocessing

    @property
    def artifacts(self) -> tuple[ArtifactInfo, ...]:
        return self._info.artifacts

    @property
    def targets(self) -> list[str]:
        """The artifact ids, in the manifest's order ("onnxruntime/fp32", "openvino/int8"...)."""
        return [a.id for a in self._info.artifacts]

    def artifact(self, target: str = "auto") -> ArtifactInfo:
        """The artifact `session(target)` would load (see `session`)."""
        from .targets import choose_artifact

        return choose_artifact(self._info.artifacts, target)

    def runnable_targets(self) -> dict[str, str | None]:
        """{artifact id: None when it runs on this device, else why not}."""
        from .targets import why_not_runnable

        return {a.id: why_not_runnable(a) for a in self._info.artifacts}

    # -- running -----------------------------------------------------------------------------
    def session(
        self, target: str = "auto", *, device: str | None = None, threads: int | None = None
    ) -> Session:
        """The artifact `target` loaded in its runtime.

        `target`: "auto" (default) picks among the artifacts that run here: gates passed before
        failed, OpenVINO before ONNX Runtime, INT8 before FP16 before FP32; a backend name
        ("openvino") picks among its artifacts; an id ("openvino/int8") picks exactly.
        `device`: OpenVINO "CPU"/"GPU"/"NPU"/"AUTO" (default: the artifact's validated
        device when present, else CPU); ONNX Runtime "CPU"/"CUDA" (default CUDA when its
        provider is installed). `threads`: inference threads (default: the runtime's, all
        cores). An unavailable choice raises `BundleError` listing what the bundle offers and
        what this device has."""
        from .session import open_session

        artifact = self.artifact(target)
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise BundleError(f"threads: expected a positive integer, got {threads!r}")
        return open_session(artifact, self.root, self.inputs, self.outputs, device, threads)

    def preprocess(self, image: np.ndarray, *, source: str = "image") -> np.ndarray:
        """A decoded image (H, W, 3) RGB uint8 or (H, W) grey -> a batch of one for the
        preprocessing's input, per the declared resize (height, width; Pillow-style bilinear),
        centre crop, scale, mean/std, colour order and layout. `source` names the image in
        errors (a file name)."""
        from .preprocess import preprocess_image

        pp = self._info.preprocessing
        if pp is None:
            raise BundleError(
                f"{self.root / MANIFEST}: preprocessing: none declared; pass model inputs "
                "as arrays instead of images"
            )
        spec = next(t for t in self.inputs if t.name == pp.input)
        return preprocess_image(image, pp, spec, source=source)

    def sample_inputs(self) -> dict[str, np.ndarray]:
        """The stored sample inputs (samples/inputs.npz), keyed by input name."""
        if not self._info.samples_inputs:
            raise BundleError(f"{self.root / MANIFEST}: samples.inputs: the bundle has no samples")
        return _load_npz(self.root / self._info.samples_inputs)

    def expected_outputs(self, target: str) -> dict[str, np.ndarray]:
        """The outputs stored for artifact `target` (an exact id) on the sample inputs."""
        art = next((a for a in self._info.artifacts if a.id == target), None)
        if art is None:
            raise BundleError(f"target {target!r}: not in this bundle; it offers {self.targets}")
        if not art.expected:
            raise BundleError(f"{MANIFEST}: artifacts[{target}].expected: no stored outputs")
        return _load_npz(self.root / art.expected)

    def smoke_test(self, target: str = "auto", *, device: str | None = None) -> SmokeTestResult:
        """Runs the stored sample inputs through `target` and compares each output with the
        artifact's stored expected outputs within its tolerance (within atol/rtol as
        numpy.allclose, or per-sample cosine >= min_cosine). Returns the result; `.passed`
        says whether it held."""
        inputs = self.sample_inputs()
        with self.session(target, device=device) as model:
            expected = self.expected_outputs(model.target)
            got = model.run(inputs)
            tol = dict(model.artifact.tolerance)
            result = SmokeTestResult(model.target, model.device, _count(inputs), tol)
        for name in self.outputs:
            if name.name not in expected:
                raise BundleError(
                    f"{model.artifact.expected}: no stored output {name.name!r} "
                    f"(it has {sorted(expected)})"
                )
            result.outputs.append(
                compare_outputs(name.name, got[name.name], expected[name.name], tol)
            )
        return result

    def __repr__(self) -> str:
        return f"<Bundle {self.name} {self.model_version or ''} at {self.root}: {self.targets}>"


def _count(inputs: dict[str, np.ndarray]) -> int:
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1
