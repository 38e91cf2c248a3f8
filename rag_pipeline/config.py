"""The pipeline configuration file (``data/pipeline.yaml``) as plain dicts per section.

Each layer turns its section into its own config dataclass (``EmbedderConfig.from_dict`` ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from rag_pipeline.settings import data_dir

CONFIG_ENV = "RAG_PIPELINE_CONFIG"


def load_pipeline_config(path: str | os.PathLike | None = None) -> dict:
    """Read the pipeline configuration: explicit path, then ``$RAG_PIPELINE_CONFIG``, then data/pipeline.yaml."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or data_dir() / "pipeline.yaml")
    try:
        loaded = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"pipeline configuration not found: {chosen}") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"{chosen}: expected a mapping of sections, got {type(loaded).__name__}")
    return loaded
