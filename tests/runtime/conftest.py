from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bundle_factory import make_bundle, write_manifest


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    """A real bundle (read-only by convention: copy it with `bundle_copy` to modify)."""
    base = tmp_path_factory.mktemp("runtime-bundle")
    root = base / "tiny"
    make_bundle(root, work=base / "work")
    return root


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    """A fresh copy of the bundle to tamper with, and a helper to rewrite its manifest."""
    root = tmp_path / "copy"
    shutil.copytree(bundle_dir, root)

    class Copy:
        path = root

        @staticmethod
        def manifest() -> dict:
            return json.loads((root / "manifest.json").read_text())

        @staticmethod
        def save(manifest: dict, *, refresh_files: bool = True) -> None:
            if refresh_files:
                write_manifest(root, manifest)
            else:
                text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
                (root / "manifest.json").write_text(text)

    return Copy
