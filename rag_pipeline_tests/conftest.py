"""Suite-wide settings: no model hub, no telemetry, state in a temporary directory."""

import os

# Set before any library import: loading by hub id must fail fast, never hang on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests read the stores they write under their own state directory.
os.environ.pop("RAG_PIPELINE_ARTIFACTS", None)
# The shipped data/ with query translation off (see suite_data.py for why); a directory set by the
# caller is kept.
from rag_pipeline_tests.suite_data import SUITE_DATA

os.environ.setdefault("RAG_PIPELINE_DATA", str(SUITE_DATA))

import pytest


@pytest.fixture()
def state_dir(tmp_path, monkeypatch):
    """A fresh RAG_PIPELINE_HOME for one test."""
    root = tmp_path / "state"
    monkeypatch.setenv("RAG_PIPELINE_HOME", str(root))
    return root


# Real local services (PostgreSQL, Redis, RabbitMQ): skip on a laptop without them, fail under CI=true.
from rag_pipeline_tests.services import postgres_database  # noqa: F401  (fixture)
