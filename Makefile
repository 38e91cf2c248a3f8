# Everything a fresh clone needs: `make demo`, `make test`, `make ui`.
# A project-local virtualenv is bootstrapped from pyproject.toml (idempotent: a stamp file skips
# the install while pyproject.toml is unchanged).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch: on machines without CUDA take the CPU build (a local wheel here); with CUDA let pip
# resolve the CUDA build from pyproject.toml's range.
TORCH_CPU ?= torch==2.13.0

export RAG_PIPELINE_HOME ?= $(CURDIR)/.rag_state
export DAGSTER_HOME ?= $(RAG_PIPELINE_HOME)/dagster
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv test test-fast demo ui corpus bench lint clean-state instance

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q "$(TORCH_CPU)"; fi
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

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

lint: $(STAMP)
	$(VENV)/bin/ruff check rag_pipeline rag_pipeline_tests benchmarks

clean-state:
	rm -rf $(RAG_PIPELINE_HOME)
