"""`nnship export`, `nnship prune`, `nnship distill`: the PyTorch side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.api._common import DataArg, ModelArg, open_data_arg
from nnship.api.results import DistillReport, PruneReport

if TYPE_CHECKING:
    from nnship.compress.config import DistillConfig, PruneConfig
    from nnship.core import TensorSpec
    from nnship.exporter.config import ExportConfig
    from nnship.exporter.export import ExportResult


def _load(
    model: ModelArg,
    inputs: Sequence[TensorSpec | str] | None,
    factory_kwargs: Mapping[str, Any] | None,
    weights: str | Path | None,
    trust_pickle: bool,
) -> Any:
    from nnship.sources.models import load_model

    return load_model(
        model,
        inputs=list(inputs) if inputs else None,
        factory_kwargs=dict(factory_kwargs) if factory_kwargs else None,
        weights=weights,
        trust_pickle=trust_pickle,
    )


def export(
    model: ModelArg,
    out_path: str | Path,
    *,
    inputs: Sequence[TensorSpec | str] | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    options: ExportConfig | None = None,
) -> ExportResult:
    """`nnship export`: load a model source (or take an `nn.Module`) and export it to a verified
    ONNX file at `out_path`. `inputs` are `TensorSpec`s or `"name:1x3x224x224[:dtype]"` strings
    (required for a factory); `options` an `ExportConfig` (defaults when None). An ONNX source
    raises `ExportError` (nothing to export). Returns the `ExportResult`."""
    from nnship.core.errors import ExportError
    from nnship.exporter import export_onnx
    from nnship.exporter.config import ExportConfig

    loaded = _load(model, inputs, factory_kwargs, weights, trust_pickle)
    if loaded.module is None:
        raise ExportError(f"'{model}' is already an ONNX model; there is nothing to export")
    loaded.require_inputs("export")
    return export_onnx(loaded, out_path, options=options or ExportConfig())


def prune(
    model: ModelArg,
    out_path: str | Path,
    config: PruneConfig,
    *,
    inputs: Sequence[TensorSpec | str] | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    trust_pickle: bool = False,
    data: DataArg | None = None,
    eval_data: DataArg | None = None,
    latency_runs: int = 30,
) -> PruneReport:
    """`nnship prune`: prune a model (structured channels or unstructured/2:4 sparsity) and
    write it as a `.pt2` at `out_path`.

    `data` (labels not needed) feeds Taylor importance and BatchNorm recalibration; with
    `config.steps > 1` pruning runs in steps and the report's "before" counts are the original
    model's. `latency_runs` > 0 (default 30) times torch CPU latency at batch 1 before and after
    (milliseconds); `eval_data` adds top-1 accuracy/agreement before and after."""
    import torch

    from nnship.compress import compress as _compress
    from nnship.compress import torch_latency_ms
    from nnship.compress.metrics import top1
    from nnship.core.errors import CompressionError
    from nnship.sources.models import save_pt2

    loaded = _load(model, inputs, factory_kwargs, weights, trust_pickle)
    if loaded.module is None:
        raise CompressionError(f"'{model}' is an ONNX model; pruning needs the PyTorch model")
    specs = loaded.require_inputs("pruning")
    example = loaded.example_inputs
    assert example is not None
    train = open_data_arg(data, specs) if data is not None else None
    result = _compress(loaded.module, example, config, None, data=train).pruned()
    assert result is not None
    report = PruneReport(loaded.source, Path(out_path), result)
    models = {"original": loaded.module, "pruned": result.module}
    if latency_runs > 0:
        batch1 = {k: torch.from_numpy(v[:1]) for k, v in example.items()}
        report.torch_latency_ms = torch_latency_ms(models, batch1, runs=latency_runs)
    if eval_data is not None:
        report.eval = top1(models, open_data_arg(eval_data, specs), reference="original")
    save_pt2(result.module, example, out_path)
    return report


def distill(
    teacher: ModelArg,
    student: ModelArg,
    out_path: str | Path,
    data: DataArg,
    config: DistillConfig,
    *,
    inputs: Sequence[TensorSpec | str] | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    teacher_weights: str | Path | None = None,
    trust_pickle: bool = False,
    val_data: DataArg | None = None,
    keep_sparsity: bool = False,
) -> DistillReport:
    """`nnship distill`: train `student` to match `teacher` on `data` (knowledge distillation)
    and write it as a `.pt2` at `out_path`. `factory_kwargs`/`teacher_weights` apply to the
    teacher; `val_data` picks the best epoch and reports agreement/accuracy; `keep_sparsity`
    keeps zeroed weights at zero (an unstructured/2:4 student)."""
    from nnship.compress import compress as _compress
    from nnship.compress import count_parameters
    from nnship.core.errors import CompressionError
    from nnship.sources.models import save_pt2

    t = _load(teacher, inputs, factory_kwargs, teacher_weights, trust_pickle)
    s = _load(student, inputs, None, None, trust_pickle)
    for role, loaded in (("teacher", t), ("student", s)):
        if loaded.module is None:
            raise CompressionError(
                f"The {role} '{loaded.source}' is ONNX; distillation needs PyTorch"
            )
    specs = s.input_specs or t.require_inputs("distillation")
    example = s.example_inputs if s.input_specs else t.example_inputs
    assert example is not None
    train = open_data_arg(data, specs)
    val = open_data_arg(val_data, specs) if val_data is not None else None
    (result,) = _compress(
        t.module,
        example,
        None,
        config,
        data=train,
        val_data=val,
        student=s.module,
        keep_zeros=keep_sparsity,
    ).distill_steps
    save_pt2(result.student, example, out_path)
    return DistillReport(
        t.source,
        s.source,
        Path(out_path),
        count_parameters(t.module),
        count_parameters(result.student),
        result,
    )
