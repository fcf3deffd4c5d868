"""load_model: factories, scripts, state dicts, pickles, ONNX files, and every error users cause."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nnship.core import TensorSpec
from nnship.core.errors import ModelSourceError, OnnxModelError
from nnship.sources.models import LoadedModel, load_model, load_state_dict

RESNET = "nnship.models:resnet_small"
TINY = {"width": 4, "depths": (1,), "num_classes": 3}


def _seeded_resnet(seed: int = 0) -> nn.Module:
    from nnship.models import resnet_small

    torch.manual_seed(seed)
    return resnet_small(**TINY).eval()


def _script(tmp_path: Path, body: str, name: str = "user_model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_factory_with_kwargs_and_inputs() -> None:
    loaded = load_model(RESNET, inputs=["x:1x3x16x16"], factory_kwargs=TINY)
    assert isinstance(loaded, LoadedModel)
    assert loaded.module is not None and not loaded.module.training
    assert loaded.module.fc.out_features == 3
    assert loaded.input_specs == [TensorSpec("x", (1, 3, 16, 16))]
    assert loaded.example_inputs is not None and loaded.example_inputs["x"].shape == (1, 3, 16, 16)
    assert loaded.onnx_path is None and not loaded.is_onnx


def test_factory_without_inputs_loads_but_export_needs_them() -> None:
    loaded = load_model(RESNET, factory_kwargs=TINY)
    assert loaded.input_specs == [] and loaded.example_inputs is None
    with pytest.raises(ModelSourceError, match=r"--input NAME:SHAPE.*") as info:
        loaded.require_inputs("export")
    assert "forward takes: x" in str(info.value)


def test_fingerprint_is_stable_and_follows_kwargs_and_weights() -> None:
    torch.manual_seed(0)
    first = load_model(RESNET, factory_kwargs=TINY).fingerprint
    torch.manual_seed(0)
    again = load_model(RESNET, factory_kwargs=TINY).fingerprint
    torch.manual_seed(0)
    wider = load_model(RESNET, factory_kwargs={**TINY, "width": 8}).fingerprint
    torch.manual_seed(1)
    other_init = load_model(RESNET, factory_kwargs=TINY).fingerprint
    assert first == again
    assert len({first, wider, other_init}) == 3


def test_script_factory_imports_its_sibling(tmp_path: Path) -> None:
    _script(tmp_path, "WIDTH = 5\n", "helpers_for_model.py")
    _script(
        tmp_path,
        """
        from torch import nn
        from helpers_for_model import WIDTH

        def make(out=2):
            return nn.Linear(WIDTH, out)
        """,
    )
    loaded = load_model("user_model.py:make", factory_kwargs={"out": 4}, base_dir=tmp_path)
    assert isinstance(loaded.module, nn.Linear)
    assert (loaded.module.in_features, loaded.module.out_features) == (5, 4)


def test_state_dict_into_factory_reproduces_outputs(tmp_path: Path) -> None:
    original = _seeded_resnet(3)
    torch.save(original.state_dict(), tmp_path / "w.pt")
    loaded = load_model(RESNET, factory_kwargs=TINY, weights=tmp_path / "w.pt")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), original(x), rtol=0, atol=0)


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_state_dict_nested_in_checkpoint(tmp_path: Path, key: str) -> None:
    original = _seeded_resnet(4)
    checkpoint = {key: original.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}
    torch.save(checkpoint, tmp_path / "ckpt.pth")
    state = load_state_dict(tmp_path / "ckpt.pth")
    assert torch.equal(state["fc.weight"], original.state_dict()["fc.weight"])


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    original = _seeded_resnet(5)
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, tmp_path / "dp.pt")
    loaded = load_model(RESNET, factory_kwargs=TINY, weights=tmp_path / "dp.pt")
    assert torch.equal(loaded.module.fc.bias, original.fc.bias)


def test_state_dict_mismatch_lists_keys(tmp_path: Path) -> None:
    state = _seeded_resnet().state_dict()
    state.pop("fc.weight")
    state["head.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelSourceError) as info:
        load_model(RESNET, factory_kwargs=TINY, weights=tmp_path / "bad.pt")
    message = str(info.value)
    assert "1 missing key(s): fc.weight" in message
    assert "1 unexpected key(s): head.extra" in message


def test_state_dict_shape_mismatch_names_tensor(tmp_path: Path) -> None:
    torch.save(_seeded_resnet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelSourceError, match=r"fc.weight \(3, 4\) vs model \(5, 4\)"):
        load_model(RESNET, factory_kwargs={**TINY, "num_classes": 5}, weights=tmp_path / "w.pt")


def test_pickled_module_needs_opt_in(tmp_path: Path) -> None:
    original = _seeded_resnet(6)
    torch.save(original, tmp_path / "full.pt")
    with pytest.raises(ModelSourceError, match="--trust-pickle"):
        load_model(tmp_path / "full.pt")
    loaded = load_model(tmp_path / "full.pt", trust_pickle=True, inputs=["x:1x3x8x8"])
    assert isinstance(loaded.module, type(original)) and not loaded.module.training
    assert torch.equal(loaded.module.fc.weight, original.fc.weight)


def test_state_dict_as_source_says_to_use_a_factory(tmp_path: Path) -> None:
    torch.save(_seeded_resnet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelSourceError, match="holds a state dict.*weights="):
        load_model(tmp_path / "w.pt")


def test_truncated_checkpoint(tmp_path: Path) -> None:
    torch.save(_seeded_resnet().state_dict(), tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "w.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelSourceError, match="not a readable PyTorch checkpoint"):
        load_model(RESNET, factory_kwargs=TINY, weights=tmp_path / "w.pt")


def test_factory_module_that_does_not_import() -> None:
    with pytest.raises(ModelSourceError, match="no_such_pkg_for_nnship.*ModuleNotFoundError"):
        load_model("no_such_pkg_for_nnship.models:make")


def test_factory_that_raises_names_factory_and_message(tmp_path: Path) -> None:
    _script(tmp_path, "def make():\n    raise ValueError('width must be even')\n")
    with pytest.raises(ModelSourceError) as info:
        load_model(f"{tmp_path / 'user_model.py'}:make")
    assert "user_model.py:make" in str(info.value)
    assert "ValueError: width must be even" in str(info.value)


def test_missing_factory_name() -> None:
    with pytest.raises(ModelSourceError, match="'nnship.models' has no attribute 'resnet_huge'"):
        load_model("nnship.models:resnet_huge")


def test_factory_not_callable(tmp_path: Path) -> None:
    _script(tmp_path, "make = 3\n")
    with pytest.raises(ModelSourceError, match="is a int, not a callable"):
        load_model("user_model.py:make", base_dir=tmp_path)


def test_factory_returns_non_module(tmp_path: Path) -> None:
    _script(tmp_path, "def make():\n    return {'not': 'a model'}\n")
    with pytest.raises(ModelSourceError, match="returned a dict, not a torch.nn.Module"):
        load_model("user_model.py:make", base_dir=tmp_path)


def test_missing_script_names_path(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="nowhere.py' does not exist"):
        load_model("nowhere.py:make", base_dir=tmp_path)


def _tiny_onnx(path: Path) -> Path:
    model = onnx.parser.parse_model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 4] x, int64[N] ids) => (float[N, 4] y) {
            y = Relu(x)
        }
        """
    )
    onnx.save(model, str(path))
    return path


def test_onnx_source(tmp_path: Path) -> None:
    path = _tiny_onnx(tmp_path / "m.onnx")
    loaded = load_model(path)
    assert loaded.is_onnx and loaded.onnx_path == path
    assert [(s.name, s.dtype) for s in loaded.input_specs] == [("x", "float32"), ("ids", "int64")]
    assert loaded.input_specs[0].shape == ("N", 4)
    assert set(loaded.example_inputs) == {"x", "ids"}
    from nnship.core.fileio import sha256_file

    assert loaded.fingerprint == sha256_file(path)


def test_onnx_source_with_wrong_declared_inputs(tmp_path: Path) -> None:
    path = _tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(ModelSourceError, match=r"\['image'\] do not match.*\['x', 'ids'\]"):
        load_model(path, inputs=["image:1x4"])


def test_truncated_and_fake_onnx(tmp_path: Path) -> None:
    path = _tiny_onnx(tmp_path / "m.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxModelError, match="m.onnx"):
        load_model(path)
    (tmp_path / "fake.onnx").write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(OnnxModelError, match="fake.onnx"):
        load_model(tmp_path / "fake.onnx")


@pytest.mark.parametrize("name", ["missing.onnx", "missing.pt2", "missing.pt", "missing_dir/m"])
def test_missing_file_names_path(tmp_path: Path, name: str) -> None:
    with pytest.raises((ModelSourceError, OnnxModelError), match="missing"):
        load_model(tmp_path / name)


def test_weights_only_apply_to_factories(tmp_path: Path) -> None:
    path = _tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(ModelSourceError, match="weights only apply to a factory"):
        load_model(path, weights=tmp_path / "w.pt")


def test_module_object_source() -> None:
    module = _seeded_resnet(7).train()
    loaded = load_model(module, inputs=[TensorSpec("x", (1, 3, 8, 8))])
    assert loaded.module is module and not module.training
    assert loaded.fingerprint == load_model(module).fingerprint
