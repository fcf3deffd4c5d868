"""Tune benchmark (issue 11): the grid as ground truth, the stage cache's savings, how close TPE
and random sampling get with 12 and 24 trials, and a kill-and-resume run, in one run.

Models:
- the reference ResNet-style and MobileNetV2-style CNNs trained on real data (the digits, as
  bench/pruning.py `--config reference`: upsampled to 64x64, 3 channels; `small`: 32x32, 1
  channel), over prune ratio x distillation epochs x quantization method x backend
  (3 x 2 x 4 x 2 = 48 grid points; distillation only when pruned, so ratio 0 builds once per
  method and backend), constraint `max_top1_drop`;
- two real pretrained models of the zoo (bench/zoo_models.py: EfficientNet-Lite0 on photo crops,
  all-MiniLM-L6-v2 on sentences; no labels) over quantization only: range method x precision
  (int8, fp16, bf16 where the CPU computes bf16) x backend; constraints `min_top1_agreement` /
  `min_cosine`. bf16 and fp16 are OpenVINO/ONNX Runtime precisions: a backend that does not
  build one skips it (the trial keeps its fp32 artifact), which is the space's exclusion.

Per model:
1. grid (`nnship tune`, `sampler = "grid"`): the ground-truth front, its wall time, the stage
   executions the shared cache saved (count of "reused" stages) and the wall-time ratio against
   independent builds: a few trials' recipes (one per compression setting, evenly spread) are
   built from scratch with an empty cache and their mean is extrapolated to every grid point
   (said so in the table; the full from-scratch run is far too long here);
2. TPE and random, 12 and 24 trials, seeds 0, 1, 2: nnship's own samplers
   (`nnship.tune.study.make_sampler`, the same constraint function, the same parameter sampling)
   REPLAYED on the grid's measurements: each proposed point gets the latency, size and
   feasibility the grid measured for it. On this machine latency drifts by tens of percent
   between runs minutes apart, so re-measuring each sampler's trials would compare noise;
   replay compares the samplers. The best feasible latency ratio (sampler / grid, >= 1) and the
   hypervolume of the feasible (latency, size) points relative to the grid's;
   one real TPE run (12 trials, seed 0, the real engine sharing the grid's stage cache) shows the
   loop end to end, its ratio measured (noisy);
3. kill-and-resume: `nnship tune` in a subprocess, SIGKILLed while a trial runs, then
   `--resume`: finished trials recomputed after the resume (must be 0).

Targets: TPE with 24 trials within 5% of the grid's best feasible latency on every model; the
grid >= 3x faster than independent builds.

    PYTHONPATH=src .venv/bin/python bench/tune.py --quick          # small CNNs, reduced spaces
    PYTHONPATH=src .venv/bin/python bench/tune.py                  # reference CNNs + zoo, full
    PYTHONPATH=src .venv/bin/python bench/tune.py --models resnet --json tune.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SEEDS = (0, 1, 2)
BUDGETS = (12, 24)
THREADS = 2


@dataclass
class ModelSpec:
    name: str
    recipe: str
    """The recipe TOML (with [tune], sampler grid)."""
    independent_samples: int = 3


@dataclass
class SamplerRow:
    sampler: str
    trials: int
    ratios: list[float] = field(default_factory=list)
    hv: list[float] = field(default_factory=list)


@dataclass
class ModelResult:
    name: str
    grid_points: int = 0
    grid_wall_s: float = 0.0
    grid_trials_s: float = 0.0
    grid_best_ms: float | None = None
    grid_best_trial: int | None = None
    feasible: int = 0
    stages_total: int = 0
    stages_reused: int = 0
    independent_s: list[float] = field(default_factory=list)
    independent_extrapolated_s: float | None = None
    samplers: list[SamplerRow] = field(default_factory=list)
    real_tpe: dict[str, Any] = field(default_factory=dict)
    kill_resume: dict[str, Any] = field(default_factory=dict)
    front_sizes: dict[str, int] = field(default_factory=dict)
    error: str = ""


# -- CPU --------------------------------------------------------------------------------------
def cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())
    return [f for f in wanted if f in flags]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# -- models and recipes -----------------------------------------------------------------------
def _toml_list(values: list[Any]) -> str:
    return json.dumps(values)


def _latency_block(runs: int) -> str:
    return textwrap.dedent(
        f"""\
        [validate.latency]
        enabled = true
        runs = {runs}
        min_warmup_runs = 3
        max_warmup_runs = 30
        """
    )


def _savez(path: Path, **arrays: np.ndarray) -> None:
    """Write the arrays unless the same ones are there: `np.savez` stamps the zip entries with
    the time, and data files are hashed by content, so a rewrite would miss the stage cache."""
    if path.is_file():
        with np.load(path) as old:
            if set(old.files) == set(arrays) and all(
                np.array_equal(old[k], v) for k, v in arrays.items()
            ):
                return
    np.savez(path, **arrays)


def cnn_recipe(name: str, args, work: Path) -> Path:
    """Train (or load) the reference CNN, write its weights, data and tune recipe."""
    import pruning
    import torch

    from nnship.datasets import digits_images

    cfg = pruning.CONFIGS[args.config]
    train, test = digits_images(size=cfg["size"], channels=cfg["channels"], seed=0)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    teacher_args = argparse.Namespace(
        config=args.config, latency_only=False, cache=args.model_cache, epochs=args.epochs
    )
    model = pruning._teacher(name, teacher_args, train)  # cached by bench/pruning.py's rule
    weights = folder / "teacher.pt"
    if not weights.is_file():  # rewritten bytes would miss the stage cache (see _savez)
        torch.save(model.state_dict(), weights)
    n_train = 512 if args.quick else len(train)
    n_eval = 256 if args.quick else 400
    _savez(folder / "train.npz", x=train.inputs["x"][:n_train], labels=train.labels[:n_train])
    _savez(folder / "calib.npz", x=train.inputs["x"][:128], labels=train.labels[:128])
    _savez(folder / "eval.npz", x=test.inputs["x"][:n_eval], labels=test.labels[:n_eval])
    size, ch = cfg["size"], cfg["channels"]
    if name == "resnet":
        source = "nnship.models:resnet_small"
        kwargs = f"{{ width = {16 if args.config == 'small' else 32}, in_channels = {ch} }}"
    else:
        source = "nnship.models:mobilenet_small"
        kwargs = f"{{ width_mult = {0.5 if args.config == 'small' else 1.0}, in_channels = {ch} }}"
    ratios = [0.0, 0.3, 0.5]
    epochs = [1, 2] if args.quick else [1, 3]
    methods = ["minmax", "percentile"] if args.quick else ["minmax", "percentile", "mse", "entropy"]
    text = f"""\
        name = "tune-{name}"
        seed = 0

        [model]
        source = "{source}"
        inputs = ["x:1x{ch}x{size}x{size}"]
        factory_kwargs = {kwargs}
        weights = "{weights}"

        [data.calibration]
        path = "{folder / "calib.npz"}"

        [data.evaluation]
        path = "{folder / "eval.npz"}"

        [data.train]
        path = "{folder / "train.npz"}"

        [prune]
        ratio = 0.3

        [distill]
        epochs = 1

        [quantize]
        precisions = ["int8"]

        [backends]
        targets = ["onnxruntime"]

        {_latency_block(20 if args.quick else 40)}
        [tune]
        objectives = ["latency", "size"]
        constraints = {{ max_top1_drop = {args.max_top1_drop} }}
        sampler = "grid"

        [tune.space]
        "prune.ratio" = {_toml_list(ratios)}
        "distill.epochs" = {_toml_list(epochs)}
        "quantize.method" = {_toml_list(methods)}
        "backends.targets" = [["onnxruntime"], ["openvino"]]

        [tune.conditions]
        "prune" = "prune.ratio > 0"
        "distill" = "prune.ratio > 0"
        """
    path = folder / "recipe.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


ZOO = {
    # bench name: (zoo_models case, factory, constraint)
    "efficientnet-lite0": ("efficientnet-lite0", "efficientnet_lite0", "min_top1_agreement = 90.0"),
    "minilm-l6": ("minilm-l6", "minilm_l6", "min_cosine = 0.98"),
}


def zoo_recipe(name: str, args, work: Path) -> Path:
    import zoo_models

    case_name, factory, constraint = ZOO[name]
    case = zoo_models.load(case_name, quick=args.quick)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    n_eval = 32 if args.quick else 128
    _savez(folder / "calib.npz", **case.calib)
    _savez(folder / "eval.npz", **{k: v[:n_eval] for k, v in case.eval.items()})
    precisions: list[list[str]] = [["int8"], ["fp16"]]
    if "avx512_bf16" in cpu_flags() or "amx_bf16" in cpu_flags():
        precisions.append(["bf16"])
    methods = ["minmax", "percentile"] if args.quick else ["minmax", "percentile", "mse", "entropy"]
    inputs = ", ".join(json.dumps(s) for s in case.input_specs)
    text = f"""\
        name = "tune-{name}"
        seed = 0

        [model]
        source = "{BENCH / "zoo_models.py"}:{factory}"
        inputs = [{inputs}]

        [data.calibration]
        path = "{folder / "calib.npz"}"

        [data.evaluation]
        path = "{folder / "eval.npz"}"

        [quantize]
        precisions = ["int8"]

        [backends]
        targets = ["onnxruntime"]

        {_latency_block(10 if args.quick else 30)}
        [tune]
        objectives = ["latency", "size"]
        constraints = {{ {constraint} }}
        sampler = "grid"

        [tune.space]
        "quantize.method" = {_toml_list(methods)}
        "quantize.precisions" = {_toml_list(precisions)}
        "backends.targets" = [["onnxruntime"], ["openvino"]]
        """
    path = folder / "recipe.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- tuning -----------------------------------------------------------------------------------
def run_tune(recipe_path: Path, tune_dir: Path, cache: Path, **overrides: Any) -> Any:
    """One in-process tune run through nnship's engine; `overrides` are recipe keys."""
    from nnship.recipe import load_recipe
    from nnship.tune.engine import run_tune as engine_run

    recipe = load_recipe(recipe_path, overrides=overrides or None)
    return engine_run(recipe, tune_dir=tune_dir, cache=cache, force=True)


def stage_counts(records: list[Any]) -> tuple[int, int]:
    """(stage executions that ran or were reused, of which reused) over the trials."""
    total = reused = 0
    for r in records:
        for state in r.stages.values():
            if state in ("ran", "reused"):
                total += 1
                reused += state == "reused"
    return total, reused


def independent_builds(recipe_path: Path, records: list[Any], k: int, work: Path) -> list[float]:
    """Wall seconds of `k` trials' recipes built from scratch (empty cache each), one per
    compression setting where possible, evenly spread over the grid."""
    import shutil

    from nnship.pipeline import build
    from nnship.recipe import load_recipe
    from nnship.tune.space import validate_space
    from nnship.tune.trial import trial_recipe

    recipe = load_recipe(recipe_path)
    space = validate_space(recipe)
    built = [r for r in records if r.state in ("complete", "infeasible")]
    by_compress: dict[str, Any] = {}
    for r in built:
        key = json.dumps({k: v for k, v in r.params.items() if k.split(".")[0] in
                          ("prune", "distill")}, sort_keys=True)  # fmt: skip
        by_compress.setdefault(key, r)
    chosen = list(by_compress.values())
    if len(chosen) < k:  # quantization-only spaces: evenly spread over the grid
        chosen = [built[int(i)] for i in np.linspace(0, len(built) - 1, k)]
    else:
        chosen = [chosen[int(i)] for i in np.linspace(0, len(chosen) - 1, k)]
    seconds = []
    for i, r in enumerate(chosen):
        out = work / f"independent-{i}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        build(trial_recipe(recipe, space, r.params), output_dir=out / "build", cache=out / "cache")
        seconds.append(time.perf_counter() - t0)
        shutil.rmtree(out, ignore_errors=True)
    return seconds


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def feasible_points(records: list[Any]) -> list[tuple[float, float]]:
    return [
        (float(r.objectives["latency_ms"]), float(r.objectives["size_bytes"]))
        for r in records
        if r.feasible
        and r.objectives.get("latency_ms") is not None
        and r.objectives.get("size_bytes") is not None
    ]


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by `points` (both minimised) and bounded by `ref`: sort by the first
    objective and sum the rectangles each new best second objective adds (the 2-D case of the
    hypervolume indicator, Zitzler & Thiele 1998)."""
    area, best_y = 0.0, ref[1]
    for x, y in sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1]):
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def replay(recipe_path: Path, grid: list[Any], sampler: str, seed: int, n: int) -> list[Any]:
    """nnship's sampler `sampler` proposing `n` trials against the grid's measurements."""
    import optuna

    from nnship.recipe import load_recipe
    from nnship.tune.engine import _optuna_values
    from nnship.tune.space import validate_space
    from nnship.tune.study import CONSTRAINTS_ATTR, make_sampler
    from nnship.tune.trial import sample_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recipe = load_recipe(recipe_path, overrides={"tune.sampler": sampler})
    space = validate_space(recipe)
    table = {_key(r.params): r for r in grid}
    study = optuna.create_study(
        directions=["minimize"] * len(space.config.objectives),
        sampler=make_sampler(space, seed),
    )
    seen = []
    for _ in range(n):
        trial = study.ask()
        params = sample_params(trial, space, recipe)
        record = table.get(_key(params))
        if record is None or record.state not in ("complete", "infeasible"):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        values, constraints = _optuna_values(record, space)
        trial.set_user_attr(CONSTRAINTS_ATTR, constraints)
        study.tell(trial, values)
        seen.append(record)
    return seen


def best_latency(records: list[Any]) -> float | None:
    values = [p[0] for p in feasible_points(records)]
    return min(values) if values else None


# -- kill and resume --------------------------------------------------------------------------
def kill_and_resume(recipe_path: Path, work: Path, cache: Path, trials: int) -> dict[str, Any]:
    """`nnship tune` SIGKILLed while its third trial runs, then `--resume`; counts the finished
    trials recomputed (trial numbers appearing again in trials.jsonl after the resume)."""
    import shutil

    tune_dir = work / "kill-resume"
    shutil.rmtree(tune_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "nnship.cli.main", "-q", "tune", str(recipe_path), "-o", str(tune_dir),
           "--cache", str(cache), "--sampler", "random", "--trials", str(trials)]  # fmt: skip
    log = (work / "kill-resume.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    jsonl = tune_dir / "trials.jsonl"
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        lines = jsonl.read_text().splitlines() if jsonl.exists() else []
        if len(lines) >= 2:
            time.sleep(1.0)  # the third trial is under way
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        return {"error": f"tune ended before it could be killed (exit {proc.returncode})"}
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    finished = {r["number"] for r in before if r["state"] != "failed"}
    t0 = time.perf_counter()
    resumed = subprocess.run(cmd + ["--resume"], stdout=log, stderr=subprocess.STDOUT)
    after = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    new_lines = after[len(before) :]
    interrupted = [r for r in new_lines if r["state"] == "failed" and "interrupted" in
                   (r.get("reason") or "")]  # fmt: skip
    rerun_params = [_key(r["params"]) for r in new_lines if r["state"] != "failed"]
    return {
        "finished_before_kill": len(finished),
        "recomputed_after_resume": sum(1 for r in new_lines if r["number"] in finished),
        "interrupted": [r["number"] for r in interrupted],
        "interrupted_rerun": all(_key(r["params"]) in rerun_params for r in interrupted),
        "finished_after_resume": len({r["number"] for r in after if r["state"] != "failed"}),
        "resume_exit": resumed.returncode,
        "resume_wall_s": round(time.perf_counter() - t0, 1),
    }


# -- one model --------------------------------------------------------------------------------
def run_model(name: str, args, work: Path, *, kill: bool) -> ModelResult:
    res = ModelResult(name)
    recipe = (
        cnn_recipe(name, args, work)
        if name in ("resnet", "mobilenet")
        else zoo_recipe(name, args, work)
    )
    folder = recipe.parent
    cache = folder / "cache"
    wall_file = folder / "grid" / "bench-wall-s.txt"
    if args.reuse_grid and wall_file.is_file():  # a finished grid of an earlier, cut-off run
        from types import SimpleNamespace

        from nnship.tune.records import read_pareto, read_trials

        grid_run = SimpleNamespace(
            records=read_trials(folder / "grid"), pareto=read_pareto(folder / "grid")
        )
        res.grid_wall_s = float(wall_file.read_text())
        print(f"[{name}] grid reused from {folder / 'grid'} (--reuse-grid)", flush=True)
    else:
        t0 = time.perf_counter()
        grid_run = run_tune(recipe, folder / "grid", cache)
        res.grid_wall_s = time.perf_counter() - t0
        wall_file.write_text(f"{res.grid_wall_s:.1f}\n")
    grid = [r for r in grid_run.records if r.state in ("complete", "infeasible")]
    res.grid_points = len(grid_run.records)
    res.grid_trials_s = sum(r.duration_s or 0.0 for r in grid_run.records)
    res.feasible = sum(1 for r in grid if r.feasible)
    res.stages_total, res.stages_reused = stage_counts(grid_run.records)
    res.grid_best_ms = best_latency(grid)
    if res.grid_best_ms is not None:
        res.grid_best_trial = next(
            r.number for r in grid if r.feasible and r.objectives["latency_ms"] == res.grid_best_ms
        )
    if grid_run.pareto is not None:
        res.front_sizes = {
            f"{g.backend}/{g.precision}": len(g.front) for g in grid_run.pareto.groups
        }
    print(f"[{name}] grid: {res.grid_points} trials in {res.grid_wall_s:.0f}s, best feasible "
          f"{res.grid_best_ms} ms (trial {res.grid_best_trial})", flush=True)  # fmt: skip

    res.independent_s = independent_builds(recipe, grid_run.records, args.independent, folder)
    res.independent_extrapolated_s = float(np.mean(res.independent_s)) * res.grid_points
    print(f"[{name}] independent builds: {[round(s) for s in res.independent_s]} s", flush=True)

    points = feasible_points(grid)
    if points:
        lat = [p[0] for p in points]
        size = [p[1] for p in points]
        ref = (max(lat) * 1.1, max(size) * 1.1)
        grid_hv = hypervolume_2d(points, ref) or 1.0
    for sampler in ("tpe", "random"):
        for n in BUDGETS:
            row = SamplerRow(sampler, n)
            for seed in SEEDS:
                seen = replay(recipe, grid_run.records, sampler, seed, n)
                best = best_latency(seen)
                row.ratios.append(best / res.grid_best_ms if best and res.grid_best_ms else np.inf)
                row.hv.append(
                    hypervolume_2d(feasible_points(seen), ref) / grid_hv if points else 0.0
                )
            res.samplers.append(row)
    if args.real_tpe:
        t0 = time.perf_counter()
        real = run_tune(recipe, folder / "tpe-real", cache, **{"tune.sampler": "tpe",
                        "tune.trials": 12, "tune.seed": 0})  # fmt: skip
        best = best_latency(real.records)
        grid_keys = {_key(r.params): r for r in grid}
        best_in_grid = best_latency([grid_keys[_key(r.params)] for r in real.records
                                     if _key(r.params) in grid_keys])  # fmt: skip
        res.real_tpe = {
            "wall_s": time.perf_counter() - t0,
            "best_ms": best,
            "ratio_measured": best / res.grid_best_ms if best and res.grid_best_ms else None,
            "ratio_on_grid_values": (
                best_in_grid / res.grid_best_ms if best_in_grid and res.grid_best_ms else None
            ),
        }
    if kill:
        res.kill_resume = kill_and_resume(recipe, folder, cache, trials=5)
    return res


# -- report -----------------------------------------------------------------------------------
def _stats(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.3f} [{v.min():.3f}-{v.max():.3f}]"


def print_report(results: list[ModelResult], args) -> None:
    print()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, flags: {' '.join(cpu_flags())}")
    print(f"config: {args.config}{' (quick)' if args.quick else ''}; seeds {SEEDS}; "
          f"samplers replayed on the grid's measurements")  # fmt: skip
    print()
    print("| model | grid trials | feasible | grid wall s | independent builds (measured, s) "
          "| independent, extrapolated s | speed-up | stage executions reused |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if r.error:
            print(f"| {r.name} | error: {r.error} |||||||")
            continue
        speed = (r.independent_extrapolated_s or 0) / r.grid_wall_s if r.grid_wall_s else 0
        print(
            f"| {r.name} | {r.grid_points} | {r.feasible} | {r.grid_wall_s:.0f} | "
            f"{', '.join(f'{s:.0f}' for s in r.independent_s)} | "
            f"{r.independent_extrapolated_s:.0f} ({len(r.independent_s)} x mean x "
            f"{r.grid_points}) | {speed:.2f}x | {r.stages_reused}/{r.stages_total} |"
        )
    print()
    print("| model | grid best feasible ms | sampler | trials | best-latency ratio median "
          "[min-max] over 3 seeds | hypervolume vs grid median [min-max] |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in results:
        for s in r.samplers:
            print(f"| {r.name} | {_fmt(r.grid_best_ms)} (trial {r.grid_best_trial}) | {s.sampler} | "
                  f"{s.trials} | {_stats(s.ratios)} | {_stats(s.hv)} |")  # fmt: skip
    print()
    for r in results:
        if r.real_tpe:
            t = r.real_tpe
            print(f"{r.name}: real TPE run, 12 trials seed 0, {t['wall_s']:.0f}s: best feasible "
                  f"{t['best_ms']} ms; ratio to the grid's best as measured "
                  f"{_fmt(t['ratio_measured'])}, on the grid's values {_fmt(t['ratio_on_grid_values'])}")  # fmt: skip
        if r.kill_resume:
            print(f"{r.name}: kill-and-resume: {r.kill_resume}")
    print()
    tpe24 = {r.name: max(s.ratios) for r in results for s in r.samplers
             if s.sampler == "tpe" and s.trials == 24}  # fmt: skip
    met = all(v <= 1.05 for v in tpe24.values()) and bool(tpe24)
    print(f"target TPE@24 within 5% of the grid's best on every model (worst seed): "
          f"{'MET' if met else 'MISSED'} {tpe24}")  # fmt: skip
    speeds = {r.name: (r.independent_extrapolated_s or 0) / r.grid_wall_s for r in results
              if r.grid_wall_s}  # fmt: skip
    ok = all(v >= 3 for v in speeds.values()) and bool(speeds)
    print(f"target grid >= 3x faster than independent builds: {'MET' if ok else 'MISSED'} "
          f"{ {k: round(v, 2) for k, v in speeds.items()} }")  # fmt: skip


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help="small CNNs (32x32), 2 methods, 2 distill settings, quick zoo data")  # fmt: skip
    parser.add_argument("--config", choices=["small", "reference"], default=None,
                        help="CNN size (default: small with --quick, else reference)")  # fmt: skip
    parser.add_argument("--models", default="resnet,mobilenet,efficientnet-lite0,minilm-l6")
    parser.add_argument("--epochs", type=int, default=6, help="float training epochs")
    parser.add_argument("--max-top1-drop", type=float, default=1.0)
    parser.add_argument("--independent", type=int, default=None,
                        help="trials rebuilt from scratch per model (default 2 quick, 4 full)")  # fmt: skip
    parser.add_argument("--no-real-tpe", dest="real_tpe", action="store_false")
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument("--reuse-grid", action="store_true",
                        help="reuse a finished grid (and its wall time) in --work")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("build/bench-tune"))
    parser.add_argument("--model-cache", type=Path, default=Path("build/bench-models"),
                        help="trained float CNNs (bench/pruning.py's cache naming)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.config = args.config or ("small" if args.quick else "reference")
    args.independent = args.independent or (2 if args.quick else 4)
    import torch

    torch.set_num_threads(THREADS)
    print(f"CPU: {cpu_model()}, flags: {' '.join(cpu_flags())}", flush=True)
    args.work = args.work.absolute()
    results = []
    for i, name in enumerate(m.strip() for m in args.models.split(",") if m.strip()):
        t0 = time.perf_counter()
        try:
            results.append(run_model(name, args, args.work, kill=args.kill and i == 0))
        except Exception as exc:  # one model's failure is a row, not the end of the run
            import traceback

            traceback.print_exc()
            results.append(ModelResult(name, error=f"{type(exc).__name__}: {exc}"))
        print(f"[{name}] done in {time.perf_counter() - t0:.0f}s", flush=True)
    print_report(results, args)
    if args.json:
        from dataclasses import asdict

        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
