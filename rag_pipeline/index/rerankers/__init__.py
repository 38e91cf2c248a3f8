"""Rerankers: score (question, passage) pairs with a cross-encoder after vector retrieval.

One module per kind (``RerankerConfig.kind``), on the interface of ``base``:
- ``none``: no reranking (``load_reranker`` returns None; final order = vector order).
- ``cross_encoder`` (kind ``cross-encoder``): ``sentence_transformers.CrossEncoder`` by hub id
  or local directory.
- ``flag`` (kind ``flag``): ``FlagEmbedding.FlagReranker`` (the notebook: BAAI/bge-reranker-v2-m3,
  normalize=True).

With ``normalize=True`` a score is the sigmoid of the model's logit (0..1, comparable across
questions); with ``normalize=False`` it is the raw logit. Both kinds compute the same thing.

``RerankerConfig`` is declared in :mod:`rag_pipeline.config` and re-exported here.
"""

from __future__ import annotations

import threading

from rag_pipeline.config import RerankerConfig
from rag_pipeline.index.rerankers.base import DEFAULT_RERANKER_MODEL, RERANKER_KINDS, Reranker
from rag_pipeline.index.rerankers.base import _sigmoid as _sigmoid
from rag_pipeline.index.rerankers.cross_encoder import CrossEncoderReranker
from rag_pipeline.index.rerankers.flag import FlagReranker

_RERANKER_CLASSES: dict[str, type[Reranker]] = {
    "cross-encoder": CrossEncoderReranker,
    "flag": FlagReranker,
}
_loaded: dict[RerankerConfig, Reranker] = {}
_load_lock = threading.Lock()


def load_reranker(config: RerankerConfig | dict | None = None) -> Reranker | None:
    """Load (once per configuration and process) the reranker a config describes; None for "none"."""
    config = RerankerConfig.from_dict(config) if not isinstance(config, RerankerConfig) else config
    if config.kind == "none":
        return None
    with _load_lock:
        if config not in _loaded:
            _loaded[config] = _RERANKER_CLASSES[config.kind](config)
        return _loaded[config]


def clear_reranker_cache() -> None:
    """Forget loaded rerankers."""
    with _load_lock:
        _loaded.clear()


__all__ = [
    "DEFAULT_RERANKER_MODEL",
    "RERANKER_KINDS",
    "CrossEncoderReranker",
    "FlagReranker",
    "Reranker",
    "RerankerConfig",
    "clear_reranker_cache",
    "load_reranker",
]
