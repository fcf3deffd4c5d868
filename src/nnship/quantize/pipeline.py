"""`quantize`: a float ONNX plus calibration data (or a calibration table) becomes an explicitly
quantized ONNX (INT8 QDQ per backend profile), an FP16 ONNX, or a dynamic INT8 ONNX."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import onnx

from nnship.core import Batch, DataSource
from nnship.errors import QuantizationError
from nnship.onnx_utils import is_quantized, load_onnx, save_onnx
from nnship.quantize import transforms
from nnship.quantize.config import FALLBACK_METHOD, QuantizeConfig
from nnship.quantize.dynamic import quantize_dynamic_int8
from nnship.quantize.evaluate import Outputs, budget_misses, compare, iter_checked, run_model, score
from nnship.quantize.fallback import accuracy_fallback
from nnship.quantize.fp16 import convert_fp16
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
    ensure_node_names(model)
    if calib_data is not None:
        next(iter_checked(model, calib_data, max_samples=1), None)  # fail fast on bad data
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
        self.table = table
        self.calib_data = calib_data
        self.eval_data = eval_data
        self.reference = reference
        self.warnings: list[str] = []
        self.method: str = config.method  # "auto" until `_choose_method` resolves it
        self.stats_data = calib_data  # calibration samples statistics use ("auto" holds some out)
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

        return build, ranges, applied

    def _choose_method(
        self, model: onnx.ModelProto, table: RangeTable, where: Any
    ) -> tuple[Candidate, tuple[onnx.ModelProto, Placement]]:
        """Resolve `method = "auto"` (see `nnship.quantize.selection`); an explicit method
        skips the search."""
        if self.method != "auto":
            candidate = self._builder(model, table)
            return candidate, candidate[0]({})
        if where is None:
            self.method = FALLBACK_METHOD
            why = "no evaluation or calibration data to compare the candidates on"
            self.selection = {"mode": "auto", "chosen": self.method, "skipped": why}
            self.warnings.append(f"method auto: {why}; used {self.method}")
            candidate = self._builder(model, table)
            return candidate, candidate[0]({})
        chosen = select_method(
            list(self.config.auto_methods), lambda m: self._builder(model, table, m), where
        )
        self.method, self.selection = chosen.method, chosen.record
        return chosen.candidate, chosen.built

    def _metrics(self, qmodel: onnx.ModelProto) -> dict[str, float] | None:
        if self.reference is None or self.eval_data is None:
            return None
        candidate = run_model(qmodel, self.eval_data, max_samples=self.config.eval_samples)
        return compare(self.reference, candidate)

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
        table = self.table if self.table is not None else self._table_for(model)
        (build, ranges, labels), (qmodel, plan) = self._choose_method(model, table, where)
        metrics = self._metrics(qmodel)
        effect = method_effect(table, ranges, self.method, plan.tensors)
        self.details["method_changed_tensors"] = effect
        if effect == 0 and plan.tensors and self.method != "minmax":
            self.warnings.append(
                f"method '{self.method}' gave exactly the minmax ranges on every "
                "quantized tensor: in effect minmax was applied"
            )
        applied: list[dict[str, Any]] = []
        for kind in ("equalization", "smoothing"):
            outcome = self._try_transform(kind, model, table, metrics)
            if outcome is None:
                continue
            record, accepted = outcome
            if record.get("applied"):
                applied.append(record)
            self.details.setdefault("transforms_considered", []).append(record)
            if accepted is not None:
                model, table, (build, ranges, labels), qmodel, plan, metrics = accepted
        self.details["method_not_applied"] = {t: labels[t] for t in plan.tensors if t in labels}
        reverted: list[dict[str, Any]] = []
        if self.config.has_budget:
            assert self.reference is not None and self.eval_data is not None
            fb = accuracy_fallback(
                build,
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
            )
            qmodel, plan, metrics, reverted = fb.model, fb.placement, fb.metrics, fb.reverted
        # Last, because it corrects the biases of the exact quantized graph that ships (the
        # fallback rebuilds the graph, which would drop a correction made earlier).
        correction = self._try_bias_correction(model, qmodel, metrics)
        if correction is not None:
            record, accepted = correction
            self.details.setdefault("transforms_considered", []).append(record)
            if accepted is not None:
                applied.append(record)
                qmodel, metrics = accepted
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
        kind: str,
        model: onnx.ModelProto,
        table: RangeTable,
        metrics: dict[str, float] | None,
    ) -> tuple[dict[str, Any], tuple | None] | None:
        mode = getattr(self.config, kind)
        if mode == "off":
            return None
        applicable = (
            transforms.has_depthwise_conv(model)
            if kind == "equalization"
            else transforms.has_weighted_matmul(model)
        )
        record: dict[str, Any] = {"name": kind, "mode": mode, "applied": False}
        func = "cross_layer_equalize" if kind == "equalization" else "smooth_activations"
        skip = None
        if not applicable:
            skip = "no depthwise convolution" if kind == "equalization" else "no weight MatMul"
        elif mode == "auto" and metrics is None:
            skip = "auto needs evaluation data to show it helps"
        elif self.calib_data is None:
            skip = "needs calibration data to recollect ranges on the transformed model"
        elif not transforms.transform_available(func):
            skip = f"nnship.calibration.{func} is not available"
        if skip is not None:
            if mode == "on" and applicable:
                raise QuantizationError(f"{kind}=on cannot run: {skip}")
            record["skipped"] = skip
            return record, None
        if kind == "equalization":
            new_model, report = transforms.equalize(model)
        else:
            new_model, report = transforms.smooth(
                model,
                table,
                self.config.smoothing_alpha,
                data=self.calib_data,
                symmetric=self.profile.activation_symmetric,
            )
        ensure_node_names(new_model)
        new_table = self._table_for(new_model)
        new_candidate = self._builder(new_model, new_table)
        new_q, new_plan = new_candidate[0]({})
        new_metrics = self._metrics(new_q)
        record["report"] = report
        record["metrics_without"] = metrics
        record["metrics_with"] = new_metrics
        if _decide(record, mode, metrics, new_metrics):
            return record, (new_model, new_table, new_candidate, new_q, new_plan, new_metrics)
        return record, None

    def _try_bias_correction(
        self, model: onnx.ModelProto, qmodel: onnx.ModelProto, metrics: dict[str, float] | None
    ) -> tuple[dict[str, Any], tuple | None] | None:
        mode = self.config.bias_correction
        if mode == "off":
            return None
        record: dict[str, Any] = {"name": "bias_correction", "mode": mode, "applied": False}
        skip = None
        if self.calib_data is None:
            skip = "needs calibration data"
        elif mode == "auto" and metrics is None:
            skip = "auto needs evaluation data to show it helps"
        elif not transforms.transform_available("correct_bias"):
            skip = "nnship.calibration.correct_bias is not available"
        if skip is not None:
            if mode == "on":
                raise QuantizationError(f"bias_correction=on cannot run: {skip}")
            record["skipped"] = skip
            return record, None
        corrected, report = transforms.correct_bias(model, qmodel, self.calib_data)
        new_metrics = self._metrics(corrected)
        record.update(report=report, metrics_without=metrics, metrics_with=new_metrics)
        if _decide(record, mode, metrics, new_metrics):
            return record, (corrected, new_metrics)
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
    """True when `after` beats `before`: higher top-1 agreement, or equal agreement and a
    cosine higher by more than 1e-4."""
    if before is None or after is None:
        return False
    (agree_b, cos_b), (agree_a, cos_a) = score(before), score(after)
    if "top1_agreement" in before and agree_a != agree_b:
        return agree_a > agree_b
    return cos_a > cos_b + 1e-4
