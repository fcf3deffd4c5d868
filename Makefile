# The whole set-up: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nnship-installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

# torch is installed first, pinned, so pip never resolves an unpinned (CUDA) torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[openvino,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nnship demo

test: $(STAMP)
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: $(STAMP)
	$(PY) bench/quantization.py
	$(PY) bench/backends.py
	$(PY) bench/pruning.py --config reference
	$(PY) bench/calibration_memory.py
	$(PY) bench/bias_correction.py
	$(PY) bench/latency_crosscheck.py
	$(PY) bench/export.py

clean:
	rm -rf build .pytest_cache
