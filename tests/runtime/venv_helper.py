"""A virtual environment with ONLY nnship-runtime (./runtime), numpy and onnxruntime installed,
cached by what went into it, for the torch-free tests and bench/runtime_import.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# pip's messages when no index (or no matching wheel) can be reached
OFFLINE_HINTS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "ConnectionError",
    "Network is unreachable",
)


class RegistryUnreachable(RuntimeError):
    """pip could not fetch the packages (no network or no index)."""


def _key() -> str:
    """Python, the pinned versions and the runtime's sources: any change makes a new venv."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}|numpy=={version('numpy')}|ort=={version('onnxruntime')}".encode())
    sources = sorted((REPO / "src/nnship/runtime").glob("*.py")) + [REPO / "runtime/pyproject.toml"]
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def runtime_venv(cache_dir: Path) -> Path:
    """The venv's folder (made on the first call for a key, reused after). Raises
    `RegistryUnreachable` when pip cannot fetch numpy/onnxruntime."""
    final = cache_dir / f"runtime-venv-{_key()}"
    if venv_python(final).exists() and (final / ".complete").exists():
        return final
    tmp = cache_dir / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(tmp)
    # build from a copy of runtime/ and the sources it points at (../src/nnship/runtime), so
    # setuptools' in-tree build/ and egg-info never land in (or go stale in) the repository
    source = tmp / "source"
    shutil.copytree(REPO / "runtime", source / "runtime",
                    ignore=shutil.ignore_patterns("build", "*.egg-info"))  # fmt: skip
    shutil.copytree(REPO / "src/nnship/runtime", source / "src/nnship/runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    cmd = [
        str(venv_python(tmp)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        str(source / "runtime"), f"numpy=={version('numpy')}",
        f"onnxruntime=={version('onnxruntime')}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        text = proc.stdout + proc.stderr
        if any(hint in text for hint in OFFLINE_HINTS):
            raise RegistryUnreachable(text.strip().splitlines()[-1])
        raise RuntimeError(f"pip install failed:\n{text}")
    shutil.rmtree(source)
    (tmp / ".complete").write_text("")
    shutil.rmtree(final, ignore_errors=True)
    # a venv's scripts hold its absolute path: they still run after the rename because we
    # only ever call its `python` directly
    tmp.rename(final)
    for stale in cache_dir.glob("runtime-venv-*"):  # one venv per cache: the newest key
        if stale != final:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def clean_env() -> dict[str, str]:
    """The environment for the venv's python: no PYTHONPATH leading back into the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return env
