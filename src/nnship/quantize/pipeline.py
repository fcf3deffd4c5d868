"""`quantize`: a float ONNX plus calibration data (or a calibration table) becomes an explicitly
quantized ONNX (INT8 QDQ per backend profile), an FP16 ONNX, or a dynamic INT8 ONNX."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from nnship.backends.onnxruntime.outputs import Outputs, iter_checked, run_model
from nnship.core import Batch, DataSource
from nnship.core.errors import QuantizationError
from nnship.onnx.graph import is_quantized, load_onnx, save_onnx
from nnship.onnx.subnormals import flush_subnormals, verify_flush
from nnship.quantize import transforms
from nnship.quantize.config import FALLBACK_METHOD, QuantizeConfig
from nnship.quantize.dynamic import quantize_dynamic_int8
from nnship.quantize.evaluate import budget_misses, compare, score
from nnship.quantize.fallback import accuracy_fallback
from nnship.quantize.fp16 import convert_fp16
from nnship.quantize.opset import upgrade_opset
from nnship.quantize.placement import Placement, ensure_node_names, plan_placement
from nnship.quantize.profiles import QuantProfile, get_profile
from nnship.quantize.qdq import write_qdq
from nnship.quantize.result import QuantizeResult
from nnship.quantize.selection import Candidate, prepare_selection, select_method
from nnship.quantize.tables import (
    RangeTable,
    candidate_tensors,
    collect_table,
    degenerate,
    method_effect,
    table_ranges,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """What a kept transform hands on: the quantized model and its metrics, and for graph
    transforms the transformed float model, its table, builder and placement."""

    qmodel: onnx.ModelProto
    metrics: dict[str, float] | None
    model: onnx.ModelProto | None = None
    table: RangeTable | None = None
    candidate: Candidate | None = None
    plan: Placement | None = None


@dataclass(frozen=True)
class GraphTransform:
    """A float-equivalent graph transform tried before the fallback (one entry per config key)."""

    name: str
    """The `QuantizeConfig` field holding its mode ("auto", "on", "off") and the record name."""
    function: str
    """The `nnship.calibration` function it needs."""
    applicable: Callable[[onnx.ModelProto], bool]
    not_applicable: str
    apply: Callable[[onnx.ModelProto, RangeTable, _Int8Job], tuple[onnx.ModelProto, Any]]
    """(model, ranges, the job: its config, calibration data and profile) -> (model, report)."""


GRAPH_TRANSFORMS = (
    GraphTransform(
        "equalization",
        "cross_layer_equalize",
        transforms.has_depthwise_conv,
        "no depthwise convolution",
        lambda model, table, job: transforms.equalize(model),
    ),
    GraphTransform(
        "smoothing",
        "smooth_activations",
        transforms.has_weighted_matmul,
        "no weight MatMul",
        lambda model, table, job: transforms.smooth(
            model,
            table,
            job.config.smoothing_alpha,
            data=job.stats_data or job.calib_data,
            symmetric=job.profile.activation_symmetric,
        ),
    ),
)
"""In the order they are tried."""


def quantize(
    onnx_path: Path | str,
    out_path: Path | str,
    config: QuantizeConfig,
    *,
    table: RangeTable | None = None,
    calib_data: DataSource | None = None,
    eval_data: DataSource | None = None,
    precision: str | None = None,
) -> QuantizeResult:
    """Quantize `onnx_path` into `out_path` (written atomically) and say what stayed float.

    `precision` defaults to the single entry of `config.precisions` ("int8", "fp16" or
    "dynamic-int8"). INT8 needs `table` (a `CalibrationTable`) or `calib_data`; with
    `eval_data` the result carries metrics against the float model, and a budget
    (`config.max_top1_drop` / `config.min_cosine`) triggers the accuracy-aware fallback.
    """
    precision = _pick_precision(config, precision)
    model = load_onnx(onnx_path)
    if is_quantized(model):
        raise QuantizationError(
            f"'{onnx_path}' is already quantized (it holds QuantizeLinear/DequantizeLinear or "
            "integer ops); quantize the float model instead"
        )
    if calib_data is not None:
        next(iter_checked(model, calib_data, max_samples=1), None)  # fail fast on bad data
    check_data = calib_data if calib_data is not None else eval_data
    conversion = None
    if precision != "fp16":  # Q/DQ (per-axis) and dynamic INT8 need opset >= 13
        model, conversion = upgrade_opset(model, data=check_data, name=str(onnx_path))
    # Subnormal weights slow float math on x86 by up to ~3x and change no output: flush them
    # before anything is derived from the weights, and prove the outputs did not move.
    flushed, subnormals = flush_subnormals(model)
    if subnormals.flushed and check_data is not None:
        verify_flush(
            model, flushed, subnormals, lambda m: run_model(m, check_data, max_samples=4).arrays
        )
    model = flushed
    ensure_node_names(model)
    reference = None
    if eval_data is not None:
        reference = run_model(model, eval_data, max_samples=config.eval_samples)
    elif config.has_budget:
        raise QuantizationError(
            "An accuracy budget (max_top1_drop / min_cosine) needs evaluation data (--eval)"
        )

    if precision == "int8":
        result, qmodel = _Int8Job(model, config, table, calib_data, eval_data, reference).run()
    else:
        if precision == "fp16":
            qmodel, float_nodes = convert_fp16(
                model, keep_io_types=config.keep_io_types, exclude=config.exclude
            )
            done = [n.name for n in model.graph.node if n.name not in {f.name for f in float_nodes}]
        else:
            qmodel, done, float_nodes = quantize_dynamic_int8(
                model, per_channel=config.per_channel, exclude=config.exclude
            )
        result = QuantizeResult(Path(out_path), precision, None, None, float_nodes, done)
        if reference is not None and eval_data is not None:
            result.metrics = compare(
                reference, run_model(qmodel, eval_data, max_samples=config.eval_samples)
            )
            misses = budget_misses(result.metrics, config.max_top1_drop, config.min_cosine)
            if misses:
                raise QuantizationError(
                    f"{precision} misses the accuracy budget ({'; '.join(misses)}); the "
                    "fallback applies to int8 only"
                )
    if conversion is not None and conversion.converted:
        result.details["opset_conversion"] = {
            **conversion.to_dict(),
            "summary": conversion.describe(),
        }
    qmodel, left = flush_subnormals(qmodel)  # a rewrite may store new float tensors
    for name, entry in left.tensors.items():
        subnormals.tensors.setdefault(name, entry)
    result.details["subnormals"] = {**subnormals.to_dict(), "summary": subnormals.describe()}
    try:
        onnx.checker.check_model(qmodel)
    except onnx.checker.ValidationError as exc:  # a bug in the rewrite, not the user's input
        raise AssertionError(f"quantized model fails the ONNX checker: {exc}") from exc
    save_onnx(qmodel, out_path)
    result.path = Path(out_path)
    return result


def _pick_precision(config: QuantizeConfig, precision: str | None) -> str:
    if precision is None:
        if len(config.precisions) != 1:
            raise QuantizationError(
                f"config.precisions lists {config.precisions}; pass precision=... to choose one"
            )
        precision = config.precisions[0]
    if precision == "bf16":
        raise QuantizationError(
            "bf16 is not an ONNX rewrite: OpenVINO runs the float model with bf16 inference "
            "precision. Compile it with `nnship compile MODEL.onnx --backend openvino "
            "--precision bf16`, or list bf16 in [quantize] precisions of a build recipe"
        )
    if precision not in ("int8", "fp16", "dynamic-int8"):
        raise QuantizationError(
            f"Unknown precision '{precision}'; choose one of int8, fp16, dynamic-int8"
        )
    return precision


def preprocess(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's basic (hardware-independent) optimizations: constant folding and
    Conv+BatchNorm/Add/Mul fusion, so Q/DQ land where the runtime will compute. Tensor names of
    fused outputs are kept. Returns `model` unchanged if ONNX Runtime cannot optimize it."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="nnship-prep-") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        options.log_severity_level = 3
        try:
            ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            out = onnx.load(options.optimized_model_filepath)
        except Exception as exc:  # optimization is an improvement, never a requirement
            log.warning("ONNX Runtime could not pre-optimize the model (%s); using it as is", exc)
            return model
    return ensure_node_names(out)


def module_names(original: onnx.ModelProto, optimized: onnx.ModelProto) -> dict[str, str]:
    """Node name in `optimized` -> torch module path, from `original` (node metadata, scoped
    names or parameter names; see `nnship.metrics.layer_match.torch_module_names`), matched
    by node name or, for nodes the optimizer renamed, by output tensor name."""
    from nnship.metrics.layer_match import torch_module_names

    by_name = torch_module_names(original)
    by_output = {
        o: by_name[n.name] for n in original.graph.node if n.name in by_name for o in n.output
    }
    out = {}
    for node in optimized.graph.node:
        module = by_name.get(node.name) or next(
            (by_output[o] for o in node.output if o in by_output), None
        )
        if module:
            out[node.name] = module
    return out


class _Int8Job:
    """One INT8 run: ranges -> placement -> Q/DQ, optional transforms, optional fallback."""

    def __init__(
        self,
        model: onnx.ModelProto,
        config: QuantizeConfig,
        table: RangeTable | None,
        calib_data: DataSource | None,
        eval_data: DataSource | None,
        reference: Outputs | None,
    ) -> None:
        if table is None and calib_data is None:
            raise QuantizationError(
                "INT8 needs calibration: pass calibration data (--calib) or a calibration "
                "table (--calib-table)"
            )
        self.config = config
        self.profile: QuantProfile = get_profile(config.profile)
        self.details: dict[str, Any] = {"profile": self.profile.describe()}
        self.model = self._pick_graph(model, preprocess(model), table)
        self.module_names = module_names(model, self.model)
        self.table = table
        self.calib_data = calib_data
        self.eval_data = eval_data
        self.reference = reference
        self.warnings: list[str] = []
        self.method: str = config.method  # "auto" until `_choose_method` resolves it
        self.stats_data = calib_data  # calibration samples statistics use ("auto" holds some out)
        # Without evaluation data, "auto" transforms are judged on the calibration samples held
        # out of the statistics (never on samples the ranges were computed from).
        self.judge: tuple[DataSource, Outputs] | None = None
        self.selection: dict[str, Any] = {"mode": "explicit", "chosen": config.method}

    def _pick_graph(
        self, original: onnx.ModelProto, optimized: onnx.ModelProto, table: RangeTable | None
    ) -> onnx.ModelProto:
        """The optimized graph, unless a given table was collected on the original one and
        covers fewer of the optimized graph's tensors."""
        self.details["preprocessed"] = True
        if table is None or optimized is original:
            return optimized
        known = set(dict(table.ranges("minmax"))) | set(degenerate(table))

        def coverage(model: onnx.ModelProto) -> float:
            wanted = candidate_tensors(model, self.profile)
            return sum(t in known for t in wanted) / max(len(wanted), 1)

        if coverage(optimized) < coverage(original):
            self.details["preprocessed"] = False
            return original
        return optimized

    # -- building blocks -------------------------------------------------------------------
    def _table_for(self, model: onnx.ModelProto) -> RangeTable:
        assert self.stats_data is not None
        return collect_table(
            model,
            self.stats_data,
            self.config.calibration,
            tensors=candidate_tensors(model, self.profile),
            warnings=self.warnings,
        )

    def _builder(
        self, model: onnx.ModelProto, table: RangeTable, method: str | None = None
    ) -> Candidate:
        """(build, ranges, tensor -> method really applied where it is not `method`)."""
        method = method or self.method
        applied: dict[str, str] = {}
        ranges = table_ranges(
            table,
            method,
            percentile=self.config.percentile,
            symmetric=self.profile.activation_symmetric,
            extreme=self.config.extreme_range,
            applied=applied,
        )
        bad = degenerate(table, self.config.extreme_range)

        def build(force_float: dict[str, str]) -> tuple[onnx.ModelProto, Placement]:
            plan = plan_placement(
                model,
                self.profile,
                ranges,
                exclude=self.config.exclude,
                degenerate=bad,
                extreme_range=self.config.extreme_range,
                force_float=force_float,
            )
            qmodel, missing = write_qdq(
                model, ranges, plan, self.profile, per_channel=self.config.per_channel
            )
            if missing:
                gone = {m.name for m in missing}
                plan.nodes = [n for n in plan.nodes if n not in gone]
                plan.float_nodes.extend(missing)
            return qmodel, plan

        return Candidate(build, ranges, applied)

    def _choose_method(
        self, model: onnx.ModelProto, table: RangeTable, where: Any
    ) -> tuple[Candidate, tuple[onnx.ModelProto, Placement]]:
        """Resolve `method = "auto"` (see `nnship.quantize.selection`); an explicit method
        skips the search."""
        if self.method != "auto":
            candidate = self._builder(model, table)
            return candidate, candidate.build({})
        if where is None:
            self.method = FALLBACK_METHOD
            why = "no evaluation or calibration data to compare the candidates on"
            self.selection = {"mode": "auto", "chosen": self.method, "skipped": why}
            self.warnings.append(f"method auto: {why}; used {self.method}")
            candidate = self._builder(model, table)
            return candidate, candidate.build({})
        chosen = select_method(
            list(self.config.auto_methods), lambda m: self._builder(model, table, m), where
        )
        self.method, self.selection = chosen.method, chosen.record
        return chosen.candidate, chosen.built

    def _metrics(self, qmodel: onnx.ModelProto) -> dict[str, float] | None:
        """Fidelity to float on the evaluation data, or else on the calibration samples that
        "auto" held out of the statistics (`self.judge`); None when there is neither."""
        if self.reference is not None and self.eval_data is not None:
            data, reference = self.eval_data, self.reference
        elif self.judge is not None:
            data, reference = self.judge
        else:
            return None
        candidate = run_model(qmodel, data, max_samples=self.config.eval_samples)
        return compare(reference, candidate)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> tuple[QuantizeResult, onnx.ModelProto]:
        # Order: the range method first (on the plain model), then the transforms with that
        # method, then the accuracy-aware fallback on the result.
        model = self.model
        where = None
        if self.method == "auto":
            where, self.stats_data = prepare_selection(
                model,
                samples=self.config.auto_samples,
                eval_data=self.eval_data,
                eval_reference=self.reference,
                calib_data=self.calib_data,
                stats_samples=self._stats_samples(),
                table_given=self.table is not None,
                min_stats_samples=self.config.calibration.min_samples,
            )
            if self.eval_data is None and where is not None and where.held_out:
                self.judge = (where.data, where.reference)
                self.details["transforms_judged_on"] = where.description
        table = self.table if self.table is not None else self._table_for(model)
        candidate, (qmodel, plan) = self._choose_method(model, table, where)
        metrics = self._metrics(qmodel)
        effect = method_effect(table, candidate.ranges, self.method, plan.tensors)
        self.details["method_changed_tensors"] = effect
        if effect == 0 and plan.tensors and self.method != "minmax":
            self.warnings.append(
                f"method '{self.method}' gave exactly the minmax ranges on every "
                "quantized tensor: in effect minmax was applied"
            )
        applied: list[dict[str, Any]] = []
        for spec in GRAPH_TRANSFORMS:
            outcome = self._try_transform(spec, model, table, metrics)
            if outcome is None:
                continue
            record, accepted = outcome
            if record.get("applied"):
                applied.append(record)
            self.details.setdefault("transforms_considered", []).append(record)
            if accepted is not None:
                model, table, candidate = accepted.model, accepted.table, accepted.candidate
                qmodel, plan, metrics = accepted.qmodel, accepted.plan, accepted.metrics
        labels = candidate.applied
        self.details["method_not_applied"] = {t: labels[t] for t in plan.tensors if t in labels}
        if self.config.weight_rounding == "adaround":
            qmodel, build, metrics, record = self._adaround(model, qmodel, candidate.build, metrics)
            candidate = candidate._replace(build=build)  # the fallback's rebuilds keep it
            applied.append(record)
            self.details["weight_rounding"] = record
        reverted: list[dict[str, Any]] = []
        if self.config.has_budget:
            assert self.reference is not None and self.eval_data is not None
            fb = accuracy_fallback(
                candidate.build,
                model,
                (qmodel, plan),
                self.reference,
                self.eval_data,
                self.calib_data or self.eval_data,
                max_top1_drop=self.config.max_top1_drop,
                min_cosine=self.config.min_cosine,
                max_reverted=self.config.max_reverted,
                sensitivity_samples=self.config.sensitivity_samples,
                eval_samples=self.config.eval_samples,
                latency_batch=self._latency_batch(),
                module_names=self.module_names,
                start_metrics=metrics,
            )
            qmodel, plan, metrics, reverted = fb.model, fb.placement, fb.metrics, fb.reverted
            self.details["fallback_undone"] = fb.undone
        # Last, because it corrects the biases of the exact quantized graph that ships (the
        # fallback rebuilds the graph, which would drop a correction made earlier).
        correction = self._try_bias_correction(model, qmodel, metrics)
        if correction is not None:
            record, accepted = correction
            self.details.setdefault("transforms_considered", []).append(record)
            if accepted is not None:
                applied.append(record)
                qmodel, metrics = accepted.qmodel, accepted.metrics
        result = QuantizeResult(
            path=Path(),
            precision="int8",
            profile=self.profile.name,
            method=self.method,
            float_nodes=plan.float_nodes,
            quantized_nodes=plan.nodes,
            reverted=reverted,
            applied_transforms=applied,
            metrics=metrics or {},
            warnings=self.warnings,
            details=self.details,
            method_selection=self.selection,
        )
        return result, qmodel

    def _adaround(
        self,
        model: onnx.ModelProto,
        qmodel: onnx.ModelProto,
        build: Any,
        metrics: dict[str, float] | None,
    ) -> tuple[onnx.ModelProto, Any, dict[str, float] | None, dict[str, Any]]:
        """Learned weight rounding of the current QDQ model; `build` is wrapped so that the
        fallback's rebuilt models keep it."""
        from nnship.quantize.adaround import adaround, apply_rounding

        if self.calib_data is None:
            raise QuantizationError(
                "weight_rounding = 'adaround' needs calibration data (--calib), not a table only"
            )
        rounded, learned, report = adaround(model, qmodel, self.calib_data, self.config.adaround)
        new_metrics = self._metrics(rounded)
        record = {
            "name": "weight_rounding",
            "mode": "adaround",
            "applied": True,
            "seconds": round(report.seconds, 2),
            "cpu_seconds": round(report.cpu_seconds, 2),
            "report": report.to_dict(),
            "metrics_without": metrics,
            "metrics_with": new_metrics,
        }

        def rebuild(force_float: dict[str, str]) -> tuple[onnx.ModelProto, Placement]:
            built, plan = build(force_float)
            return apply_rounding(built, learned), plan

        return rounded, rebuild, new_metrics if new_metrics is not None else metrics, record

    def _stats_samples(self) -> int | None:
        """How many calibration samples the statistics use (or used, for a given table)."""
        if self.table is not None:
            return getattr(self.table, "num_samples", None)
        return self.config.calibration.max_samples

    def _latency_batch(self) -> Batch | None:
        data = self.eval_data
        if data is None:
            return None
        first = next(iter(data.iter_batches(1)), None)
        return None if first is None else dict(first.inputs)

    def _try_transform(
        self,
        spec: GraphTransform,
        model: onnx.ModelProto,
        table: RangeTable,
        metrics: dict[str, float] | None,
    ) -> tuple[dict[str, Any], Accepted | None] | None:
        kind = spec.name
        mode = getattr(self.config, kind)
        if mode == "off":
            return None
        applicable = spec.applicable(model)
        record: dict[str, Any] = {"name": kind, "mode": mode, "applied": False}
        skip = None
        if not applicable:
            skip = spec.not_applicable
        elif mode == "auto" and metrics is None:
            skip = "auto needs evaluation data (or held-out calibration samples) to show it helps"
        elif self.calib_data is None:
            skip = "needs calibration data to recollect ranges on the transformed model"
        elif not transforms.transform_available(spec.function):
            skip = f"nnship.calibration.{spec.function} is not available"
        if skip is not None:
            if mode == "on" and applicable:
                raise QuantizationError(f"{kind}=on cannot run: {skip}")
            record["skipped"] = skip
            return record, None
        new_model, report = spec.apply(model, table, self)
        ensure_node_names(new_model)
        new_table = self._table_for(new_model)
        new_candidate = self._builder(new_model, new_table)
        new_q, new_plan = new_candidate.build({})
        new_metrics = self._metrics(new_q)
        record["report"] = report
        record["metrics_without"] = metrics
        record["metrics_with"] = new_metrics
        if _decide(record, mode, metrics, new_metrics):
            return record, Accepted(
                new_q, new_metrics, new_model, new_table, new_candidate, new_plan
            )
        return record, None

    def _try_bias_correction(
        self, model: onnx.ModelProto, qmodel: onnx.ModelProto, metrics: dict[str, float] | None
    ) -> tuple[dict[str, Any], Accepted | None] | None:
        mode = self.config.bias_correction
        if mode == "off":
            return None
        record: dict[str, Any] = {"name": "bias_correction", "mode": mode, "applied": False}
        skip = None
        if self.calib_data is None:
            skip = "needs calibration data"
        elif mode == "auto" and metrics is None:
            skip = "auto needs evaluation data (or held-out calibration samples) to show it helps"
        elif not transforms.transform_available("correct_bias"):
            skip = "nnship.calibration.correct_bias is not available"
        if skip is not None:
            if mode == "on":
                raise QuantizationError(f"bias_correction=on cannot run: {skip}")
            record["skipped"] = skip
            return record, None
        corrected, report = transforms.correct_bias(
            model, qmodel, self.stats_data or self.calib_data
        )
        new_metrics = self._metrics(corrected)
        record.update(report=report, metrics_without=metrics, metrics_with=new_metrics)
        if _decide(record, mode, metrics, new_metrics):
            return record, Accepted(corrected, new_metrics)
        return record, None


def _decide(
    record: dict[str, Any],
    mode: str,
    before: dict[str, float] | None,
    after: dict[str, float] | None,
) -> bool:
    """Whether a transform is kept ("on", or "auto" when it measurably helps); records the
    decision in `record`."""
    if mode == "on" or _helps(before, after):
        record["applied"] = True
        record["decision"] = "on" if mode == "on" else "applied: measurably helps"
        return True
    record["decision"] = "not applied: no measurable gain on the evaluation data"
    return False


def _helps(before: dict[str, float] | None, after: dict[str, float] | None) -> bool:
    """True when `after` beats `before`: top-1 agreement higher by at least two samples, or
    else a cosine higher by more than 1e-4.

    A change of one sample's top-1 class is not evidence on a few dozen samples (and a 2-D
    output may be an embedding, whose argmax means nothing): then the cosine decides.
    """
    if before is None or after is None:
        return False
    (agree_b, cos_b), (agree_a, cos_a) = score(before), score(after)
    samples = min(before.get("samples", 0.0), after.get("samples", 0.0))
    if "top1_agreement" in before and abs(agree_a - agree_b) * samples >= 1.5:
        return agree_a > agree_b
    return cos_a > cos_b + 1e-4
