"""Import time and peak memory of the device runtime against the full package.

Each variant runs in a fresh interpreter (so nothing is imported or cached in-process),
round-robin over the repetitions (one interleaved pass), and the table gives medians:

- `nnship-runtime venv`: a virtual environment with ONLY ./runtime + numpy + onnxruntime
  (tests/runtime/venv_helper.py, cached), `import nnship.runtime`, then
  `Bundle.load(...).session(target)` and one `run` on the bundle's sample inputs;
- `full venv, nnship.runtime`: the same code in the main venv (torch etc. installed, unused);
- `full venv, nnship + api + torch`: `import nnship, nnship.api, torch` (what a device would
  pay for the build package).

`import s` is the import statement(s) alone; `load+session+run s` the rest (hash check of every
file, session creation, one run); peak RSS is the process's maximum resident set
(VmHWM, includes the interpreter). Interpreter start-up is not in the figures.

    python bench/runtime_import.py [--bundle DIST] [--reps 5]

Without `--bundle` it writes the runtime tests' bundle (tests/runtime/bundle_factory.py: a
tiny CNN, four artifacts) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))

# VmHWM (the peak resident set of this process image); ru_maxrss would carry over the parent's
# peak across fork+exec on Linux
PEAK = """
def peak_kb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
RUNTIME_CODE = (
    PEAK
    + """
import json, sys, time
t0 = time.perf_counter()
import nnship.runtime
t1 = time.perf_counter()
bundle = nnship.runtime.Bundle.load(sys.argv[1])
model = bundle.session(sys.argv[2])
model.run(bundle.sample_inputs())
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "rest_s": t2 - t1, "target": model.target,
                  "rss_kb": peak_kb()}))
"""
)
FULL_CODE = (
    PEAK
    + """
import json, time
t0 = time.perf_counter()
import nnship, nnship.api, torch
t1 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "rest_s": None, "target": None,
                  "rss_kb": peak_kb()}))
"""
)


def _run(python: Path | str, code: str, args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([str(python), "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False, cwd=tempfile.gettempdir())  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{python}: failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cpu() -> str:
    try:
        from nnship.core.environment import cpu_model_and_flags

        model, flags = cpu_model_and_flags()
        return f"CPU: {model}; flags: {' '.join(flags)}; cores: {os.cpu_count()}"
    except Exception as exc:  # the bench still runs where the helper cannot read the CPU
        return f"CPU: unknown ({exc})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="a bundle folder (default: a tiny test bundle)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--target", default="onnxruntime/int8",
                        help="the artifact both runtime variants load (default onnxruntime/int8)")  # fmt: skip
    args = parser.parse_args()
    from venv_helper import clean_env, runtime_venv, venv_python

    tmp = tempfile.TemporaryDirectory()
    bundle = args.bundle
    if bundle is None:
        from bundle_factory import make_bundle

        bundle = Path(tmp.name) / "tiny"
        make_bundle(bundle, work=Path(tmp.name) / "work")
    venv_dir = runtime_venv(REPO / ".pytest_cache" / "d" / "nnship-runtime-venvs")
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    variants = {
        "nnship-runtime venv (numpy + onnxruntime)": (venv_python(venv_dir), RUNTIME_CODE,
                                                      [str(bundle), args.target], clean_env()),
        "full venv, nnship.runtime": (sys.executable, RUNTIME_CODE, [str(bundle), args.target],
                                      full_env),
        "full venv, nnship.runtime (openvino/int8)": (sys.executable, RUNTIME_CODE,
                                                      [str(bundle), "openvino/int8"], full_env),
        "full venv, import nnship + nnship.api + torch": (sys.executable, FULL_CODE, [], full_env),
    }  # fmt: skip
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for spec in variants.values():  # warm the OS file cache before timing
        _run(*spec)
    for _ in range(args.reps):
        for name, spec in variants.items():
            results[name].append(_run(*spec))
    print(_cpu())
    print(f"bundle: {bundle}; {args.reps} repetitions, medians, one fresh interpreter each\n")
    print("| variant | target | import s | load+session+run s | peak RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for name, rows in results.items():
        imp = statistics.median(r["import_s"] for r in rows)
        rest = [r["rest_s"] for r in rows if r["rest_s"] is not None]
        rss = statistics.median(r["rss_kb"] for r in rows) / 1024
        rest_text = f"{statistics.median(rest):.3f}" if rest else "-"
        print(f"| {name} | {rows[0]['target'] or '-'} | {imp:.3f} | {rest_text} | {rss:.0f} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
