"""save_pt2 / load_model on .pt2: dynamic batch, input names, fallbacks, corrupt files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nnship.core import TensorSpec, example_batch
from nnship.core.errors import ExportError, ModelSourceError
from nnship.sources.models import ExportedModule, load_model, save_pt2


def _resnet() -> nn.Module:
    from nnship.models import resnet_small

    torch.manual_seed(0)
    return resnet_small(width=4, depths=(1,), num_classes=3).eval()


def test_roundtrip_has_dynamic_batch_and_same_outputs(tmp_path: Path) -> None:
    module = _resnet()
    path = save_pt2(module, {"x": np.zeros((1, 3, 16, 16), np.float32)}, tmp_path / "m.pt2")
    loaded = load_model(path)
    assert loaded.input_specs == [TensorSpec("x", ("batch", 3, 16, 16))]
    assert isinstance(loaded.module, ExportedModule) and loaded.exported_program is not None
    loaded.module.eval()  # a bare exported module refuses eval(); the wrapper must not
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), module(x))
        torch.testing.assert_close(loaded.module(x=x), module(x))
    assert loaded.example_inputs is not None and loaded.example_inputs["x"].shape[1:] == (3, 16, 16)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt2"]  # no temporary left behind


def test_multi_input_names_and_dtypes() -> None:
    from nnship.models import encoder_small

    torch.manual_seed(0)
    module = encoder_small(vocab_size=30, max_len=8, d_model=8, heads=2, layers=1)
    specs = [
        TensorSpec("input_ids", (1, 8), "int64"),
        TensorSpec("attention_mask", (1, 8), "int64"),
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = save_pt2(module, example_batch(specs), Path(tmp) / "enc.pt2")
        loaded = load_model(path)
    assert [(s.name, s.shape, s.dtype) for s in loaded.input_specs] == [
        ("input_ids", ("batch", 8), "int64"),
        ("attention_mask", ("batch", 8), "int64"),
    ]
    batch = example_batch(loaded.input_specs, batch=3)
    with torch.no_grad():
        got = loaded.module(**{k: torch.from_numpy(v) for k, v in batch.items()})
        want = module(*(torch.from_numpy(v) for v in batch.values()))
    torch.testing.assert_close(got, want)


class _TwoArgs(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * 2 + b


def test_batch_names_not_in_forward_pass_by_position(tmp_path: Path) -> None:
    batch = {"first": np.ones((2, 3), np.float32), "second": np.full((2, 3), 5, np.float32)}
    loaded = load_model(save_pt2(_TwoArgs(), batch, tmp_path / "two.pt2"))
    assert [s.name for s in loaded.input_specs] == ["first", "second"]
    out = loaded.module(first=torch.ones(4, 3), second=torch.zeros(4, 3))
    assert out.shape == (4, 3) and float(out[0, 0]) == 2.0


class _BatchOfTwo(nn.Module):
    """Branches on the batch size, so tracing specialises it and a dynamic batch cannot work."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[0] == 2 else x


def test_static_fallback_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nnship.sources.pt2"):
        path = save_pt2(_BatchOfTwo(), {"x": np.ones((1, 4), np.float32)}, tmp_path / "s.pt2")
    assert "static shapes" in caplog.text
    assert load_model(path).input_specs == [TensorSpec("x", (1, 4))]


def test_program_saved_by_plain_torch_export(tmp_path: Path) -> None:
    program = torch.export.export(_TwoArgs(), (torch.ones(2, 3), torch.ones(2, 3)))
    torch.export.save(program, str(tmp_path / "plain.pt2"))
    loaded = load_model(tmp_path / "plain.pt2")
    assert [s.name for s in loaded.input_specs] == ["a", "b"]
    assert loaded.input_specs[0].shape == (2, 3)  # exported without dynamic shapes
    assert loaded.module(torch.ones(2, 3), torch.ones(2, 3)).sum().item() == 18.0


def test_corrupt_pt2(tmp_path: Path) -> None:
    (tmp_path / "bad.pt2").write_bytes(b"PK\x03\x04 definitely not a program")
    with pytest.raises(ModelSourceError, match="bad.pt2' is not a readable torch.export"):
        load_model(tmp_path / "bad.pt2")


class _Untraceable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(x.numpy() * 2)


def test_failed_export_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="_Untraceable"):
        save_pt2(_Untraceable(), {"x": np.ones((2, 2), np.float32)}, tmp_path / "u.pt2")
    assert list(tmp_path.iterdir()) == []


_RAN: list[str] = []


def _record(what: str) -> tuple:
    _RAN.append(what)
    return ((), {})


class _Payload:
    def __reduce__(self):
        return (_record, ("unpickled",))


def test_pickled_payload_in_pt2_needs_opt_in(tmp_path: Path) -> None:
    import io
    import zipfile

    path = save_pt2(
        _TwoArgs(),
        {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)},
        tmp_path / "ok.pt2",
    )
    assert load_model(path).input_specs[0].name == "a"  # nnship's own files hold no pickles
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            if "sample_inputs" in member:
                buffer = io.BytesIO()
                torch.save(_Payload(), buffer)
                data = buffer.getvalue()
            dst.writestr(member, data)
    with pytest.raises(ModelSourceError, match="sample_inputs.*--trust-pickle"):
        load_model(evil)
    assert _RAN == []
