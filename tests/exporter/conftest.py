"""Tiny reference models for exporter tests, exported once per test process."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_models import IMAGE, TOKENS, tiny_encoder, tiny_resnet, token_examples


@pytest.fixture(scope="session")
def resnet_export(tmp_path_factory: pytest.TempPathFactory):
    """(module, ExportResult) of the tiny ResNet exported with the defaults."""
    from nnship.exporter import export_onnx

    module = tiny_resnet()
    out: Path = tmp_path_factory.mktemp("resnet") / "resnet.onnx"
    return module, export_onnx(module, out, input_specs=IMAGE)


@pytest.fixture(scope="session")
def encoder_export(tmp_path_factory: pytest.TempPathFactory):
    """(module, ExportResult) of the tiny encoder exported with the defaults."""
    from nnship.exporter import export_onnx

    module = tiny_encoder()
    out: Path = tmp_path_factory.mktemp("encoder") / "encoder.onnx"
    result = export_onnx(module, out, input_specs=TOKENS, example_inputs=token_examples())
    return module, result
