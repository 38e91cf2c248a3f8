# Everything a fresh clone needs: `make demo`, `make test`, `make ui`.
# A project-local virtualenv is bootstrapped from requirements.lock, the full resolved dependency
# set (idempotent: a stamp file skips the install while pyproject.toml and the lock are unchanged).
# `make lock` regenerates the lock from pyproject.toml (+ lock-pins.txt) with pip-tools.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PIP_VERSION ?= 26.3
PIP_TOOLS_VERSION ?= 7.6.2
LOCK_VENV ?= .venv-lock
# torch: the lock records the release without a local label (+cpu), so a CUDA machine resolves the
# same release's CUDA build. Machines without CUDA install the CPU build first (a local wheel here);
# point PIP_EXTRA_INDEX_URL at a CPU wheel index to get one elsewhere.
TORCH_VERSION := $(shell sed -n 's/^torch==//p' $(LOCK))
TORCH_CPU ?= torch==$(TORCH_VERSION)

# llama-cpp-python (the offline LLM's engine) ships only its source on PyPI: pip compiles it once (about
# 5 minutes on 2 cores) and keeps the wheel in its cache (~/.cache/pip), so later fresh clones install it in
# seconds. x86-64-v3 flags rather than -march=native: a native build here enabled
# instructions (AMX among them) that this machine's VM refuses at run time ("Illegal instruction"). A CMAKE_ARGS of your own (e.g.
# -DGGML_CUDA=on) wins. pip's wheel cache ignores CMAKE_ARGS: after changing them, `pip cache remove llama_cpp_python`.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON) -DLLAVA_BUILD=OFF

export RAG_PIPELINE_HOME ?= $(CURDIR)/.rag_state
export DAGSTER_HOME ?= $(RAG_PIPELINE_HOME)/dagster
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv lock test test-fast demo ui corpus bench gpu-check lint clean-state instance

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "pip==$(PIP_VERSION)"
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q -c $(LOCK) "$(TORCH_CPU)"; fi
	CMAKE_ARGS="$${CMAKE_ARGS:-$(LLAMA_CMAKE_ARGS)}" $(PY) -m pip install -q -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Regenerate the lock on purpose (after a bump in pyproject.toml or lock-pins.txt), then `make test`.
# Pins already in the lock are kept where they still fit; LOCK_ARGS="--upgrade-package NAME" moves one.
# The +cpu label is dropped from torch so the lock does not force the CPU build on CUDA machines.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q "pip-tools==$(PIP_TOOLS_VERSION)"; }
	$(LOCK_VENV)/bin/pip-compile -q $(LOCK_ARGS) --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --constraint=lock-pins.txt --output-file=$(LOCK) pyproject.toml
	sed -i 's/^torch==\([^+ ]*\)+cpu/torch==\1/' $(LOCK)

venv: $(STAMP)

instance: $(STAMP)
	$(PY) -m rag_pipeline.cli init

test: $(STAMP)
	$(PY) -m pytest -q -ra

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow"

demo: instance
	$(PY) -m rag_pipeline.cli demo

ui: instance
	$(VENV)/bin/dagster dev -w workspace.yaml

corpus: $(STAMP)
	$(PY) -m rag_pipeline.demo_corpus.build

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/generation.py
	$(PY) benchmarks/incremental.py

# The notebook's 8B LLMs, bge-m3 and the reranker at full size with random weights (docs/gpu.md);
# without CUDA, a dry run of the same code with tiny configurations. JSON in benchmarks/results/gpu/.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --out benchmarks/results/gpu

lint: $(STAMP)
	$(VENV)/bin/ruff check rag_pipeline rag_pipeline_tests benchmarks

clean-state:
	rm -rf $(RAG_PIPELINE_HOME)
