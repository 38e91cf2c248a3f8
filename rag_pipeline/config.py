"""The pipeline configuration file (``data/pipeline.yaml``) as plain dicts per section.

Each layer turns its section into its own config dataclass (``EmbedderConfig.from_dict`` ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from rag_pipeline.settings import data_dir

CONFIG_ENV = "RAG_PIPELINE_CONFIG"


def read_yaml(path: str | os.PathLike, error: type[Exception], what: str = "file"):
    """Parse a YAML file; a missing file or bad YAML raises `error` naming the path."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def load_pipeline_config(path: str | os.PathLike | None = None) -> dict:
    """Read the pipeline configuration: explicit path, then ``$RAG_PIPELINE_CONFIG``, then data/pipeline.yaml."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or data_dir() / "pipeline.yaml")
    loaded = read_yaml(chosen, FileNotFoundError, "pipeline configuration") or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{chosen}: expected a mapping of sections, got {type(loaded).__name__}")
    return loaded
