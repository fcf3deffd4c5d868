"""TorchRunner, the float baseline, and the output-naming convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnship.backends.torch_runner import TorchRunner, flatten_outputs
from nnship.core import TensorSpec
from nnship.core.errors import BackendError, DataError


def test_flatten_outputs_naming() -> None:
    t = torch.zeros(1)
    assert list(flatten_outputs(t)) == ["output"]
    assert list(flatten_outputs((t, t))) == ["output_0", "output_1"]
    nested = flatten_outputs({"logits": t, "aux": [t, {"a": t}], "skip": None})
    assert list(nested) == ["logits", "aux.0", "aux.1.a"]
    assert list(flatten_outputs(((t, t), t))) == ["output_0.0", "output_0.1", "output_1"]
    assert float(flatten_outputs(3.0)["output"]) == 3.0
    with pytest.raises(BackendError, match="'output_1' is a str"):
        flatten_outputs((t, "text"))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.dropout = nn.Dropout(0.9)

    def forward(self, x: torch.Tensor, bias: torch.Tensor):
        y = self.dropout(self.linear(x)) + bias
        return {"y": y, "norm": y.norm(dim=-1)}


def test_runs_keyword_inputs_in_eval_mode_with_dynamic_batch() -> None:
    torch.manual_seed(0)
    module = TwoInputs().train()
    specs = [TensorSpec("x", (1, 3)), TensorSpec("bias", (1, 2))]
    runner = TorchRunner(module, specs)
    assert [s.shape for s in runner.input_specs] == [("batch", 3), ("batch", 2)]
    assert runner.output_names == ["y", "norm"]  # discovered from a first run
    x = np.ones((4, 3), np.float32)
    bias = np.full((4, 2), 0.5, np.float32)
    out = runner.run({"x": x, "bias": bias})
    expected = module.linear(torch.from_numpy(x)).detach().numpy() + 0.5  # no dropout: eval
    np.testing.assert_allclose(out["y"], expected, rtol=1e-6)
    assert out["norm"].shape == (4,) and not module.training
    with pytest.raises(DataError, match="bias"):
        runner.run({"x": x})


def test_static_specs_and_threads_are_restored() -> None:
    before = torch.get_num_threads()
    specs = [TensorSpec("x", (2, 3)), TensorSpec("bias", (2, 2))]
    runner = TorchRunner(TwoInputs(), specs, threads=1, dynamic_batch=False)
    with pytest.raises(DataError, match="axis 0 is 3"):
        runner.run({"x": np.ones((3, 3), np.float32), "bias": np.ones((3, 2), np.float32)})
    runner.run({"x": np.ones((2, 3), np.float32), "bias": np.ones((2, 2), np.float32)})
    assert torch.get_num_threads() == before
    with pytest.raises(BackendError, match="threads"):
        TorchRunner(TwoInputs(), specs, threads=0)


def test_inputs_named_unlike_forward_parameters_pass_by_position() -> None:
    import numpy as np
    import torch

    from nnship.backends.torch_runner import TorchRunner
    from nnship.core import TensorSpec

    linear = torch.nn.Linear(3, 2)  # forward(input)
    runner = TorchRunner(linear, [TensorSpec("x", (1, 3))])
    out = runner.run({"x": np.ones((4, 3), np.float32)})
    assert out["output"].shape == (4, 2)


def test_inputs_that_cannot_fit_forward_are_a_clear_error() -> None:
    import pytest
    import torch

    from nnship.backends.torch_runner import TorchRunner
    from nnship.core import TensorSpec
    from nnship.core.errors import DataError

    with pytest.raises(DataError, match=r"\['a', 'b'\] do not match Linear.forward\(input\)"):
        TorchRunner(torch.nn.Linear(3, 2), [TensorSpec("a", (1, 3)), TensorSpec("b", (1, 3))])
