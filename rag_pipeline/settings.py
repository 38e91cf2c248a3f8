"""Where runtime state lives and where the shipped data is.

All runtime state (Dagster instance, stored assets, Chroma, caches, converted models) lives under
one directory: ``$RAG_PIPELINE_HOME``, by default ``.rag_state`` in the current directory. Only the
stored assets can live elsewhere: ``$RAG_PIPELINE_ARTIFACTS`` names a path, a shared mount or an
fsspec URL (``s3://bucket/prefix``) that every worker reaches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STATE_ENV = "RAG_PIPELINE_HOME"
DATA_ENV = "RAG_PIPELINE_DATA"
ARTIFACTS_ENV = "RAG_PIPELINE_ARTIFACTS"

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def data_dir() -> Path:
    """The registries and shipped datasets (``data/`` of the repository unless overridden)."""
    return Path(os.environ.get(DATA_ENV, REPO_ROOT / "data")).resolve()


@dataclass(frozen=True)
class StatePaths:
    """The layout of the state directory; every writer goes through these paths."""

    root: Path

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def artifacts(self) -> Path | str:
        """The artifact store's root: ``$RAG_PIPELINE_ARTIFACTS`` (a path, or an fsspec URL kept as
        text), else ``<state>/artifacts``. Every ArtifactStore of the pipeline is opened on this."""
        chosen = os.environ.get(ARTIFACTS_ENV, "").strip()
        if not chosen:
            return self.root / "artifacts"
        if "://" in chosen or "::" in chosen:
            return chosen
        return Path(chosen).expanduser().resolve()

    @property
    def artifact_cache(self) -> Path:
        """Local copies of remote artifact files that need a real file (a PDF for pymupdf)."""
        return self.root / "cache" / "artifacts"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def generation_cache(self) -> Path:
        return self.root / "cache" / "generations"

    @property
    def judge_cache(self) -> Path:
        return self.root / "cache" / "judge"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"


def state_paths(root: str | os.PathLike | None = None) -> StatePaths:
    """Resolve the state directory: explicit argument, then ``$RAG_PIPELINE_HOME``, then ./.rag_state."""
    chosen = root or os.environ.get(STATE_ENV) or Path.cwd() / ".rag_state"
    path = Path(chosen).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return StatePaths(path)
