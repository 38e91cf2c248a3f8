# Everything a fresh clone needs: `make demo`, `make test`, `make ui`.
# A project-local virtualenv is bootstrapped from requirements.lock, the full resolved dependency
# set (idempotent: a stamp file skips the install while pyproject.toml and the lock are unchanged).
# `make lock` regenerates the lock from pyproject.toml (+ lock-pins.txt) with pip-tools.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
PIP_VERSION ?= 26.3
PIP_TOOLS_VERSION ?= 7.6.2
LOCK_VENV ?= .venv-lock
# torch: the lock records the release without a local label (+cpu), so a CUDA machine resolves the
# same release's CUDA build. Machines without CUDA install the CPU build first (a local wheel here);
# point PIP_EXTRA_INDEX_URL at a CPU wheel index to get one elsewhere.
TORCH_VERSION := $(shell sed -n 's/^torch==//p' $(LOCK))
TORCH_CPU ?= torch==$(TORCH_VERSION)

# llama-cpp-python (the offline LLM's engine) ships only its source on PyPI: it is compiled once per
# machine and set of flags (about 5 minutes on 2 cores) into a wheel under LLAMA_WHEELS, a folder named
# after the version and the flags, so later fresh clones install it in seconds and a change of flags
# builds anew (pip's own wheel cache would reuse a wheel whatever the flags). x86-64 flags are read off
# /proc/cpuinfo rather than -march=native: a native build here enabled AMX, which this machine's VM
# refuses at run time ("Illegal instruction"); AVX-512 where the CPU has it (here 1.4x faster prompt
# processing and 1.2x faster batched decoding than AVX2, benchmarks/README.md). A CMAKE_ARGS of your own (e.g.
# -DGGML_CUDA=on) wins and gets its own folder.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
# "yes" when the CPU has every flag in $(1), else empty. (An earlier $(and $(foreach ...)) was true for
# any one flag, and even for none: the blanks between empty matches count as text. It built AVX-512
# into the wheel on an AMD EPYC without it, and llama.cpp died with "Illegal instruction".)
has_cpu = $(if $(filter-out $(CPU_FLAGS),$(1)),,yes)
LLAMA_X86_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	$(if $(call has_cpu,avx_vnni),-DGGML_AVX_VNNI=ON) \
	$(if $(call has_cpu,avx512f avx512cd avx512vl avx512dq avx512bw),-DGGML_AVX512=ON \
		$(if $(call has_cpu,avx512vbmi),-DGGML_AVX512_VBMI=ON) $(if $(call has_cpu,avx512_vnni),-DGGML_AVX512_VNNI=ON) \
		$(if $(call has_cpu,avx512_bf16),-DGGML_AVX512_BF16=ON))
LLAMA_CMAKE_ARGS ?= $(strip $(if $(filter x86_64,$(shell uname -m)),$(LLAMA_X86_ARGS)) -DLLAVA_BUILD=OFF)
LLAMA_BUILD_ARGS := $(or $(CMAKE_ARGS),$(LLAMA_CMAKE_ARGS))
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' $(LOCK))
LLAMA_BUILD_KEY := $(shell printf '%s %s' '$(LLAMA_VERSION)' '$(LLAMA_BUILD_ARGS)' | sha256sum | cut -c1-16)
LLAMA_WHEELS ?= $(HOME)/.cache/rag_pipeline/llama-cpp-wheels/$(LLAMA_BUILD_KEY)
# The stamp names the llama.cpp build, so a change of flags (another CPU, your CMAKE_ARGS) reinstalls it.
STAMP := $(VENV)/.installed-$(LLAMA_BUILD_KEY)

export RAG_PIPELINE_HOME ?= $(CURDIR)/.rag_state
export DAGSTER_HOME ?= $(RAG_PIPELINE_HOME)/dagster
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv llama-args lock test test-fast demo ui corpus bench gpu-check lint clean-state instance

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "pip==$(PIP_VERSION)"
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q -c $(LOCK) "$(TORCH_CPU)"; fi
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { echo "compiling llama-cpp-python $(LLAMA_VERSION) once for this machine ($(LLAMA_BUILD_ARGS)), about 5 minutes"; \
		CMAKE_ARGS="$(LLAMA_BUILD_ARGS)" $(PY) -m pip wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"; }
	$(PY) -m pip install -q --no-deps --force-reinstall --no-index --find-links $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"
	$(PY) -m pip install -q -c $(LOCK) --find-links $(LLAMA_WHEELS) -e '.[dev]'
	rm -f $(VENV)/.installed*
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

# The llama.cpp build arguments this machine gets (rag_pipeline_tests/test_makefile.py reads them).
llama-args:
	@echo $(LLAMA_BUILD_ARGS)

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
