"""The interface every reranker implements: logits of (query, passage) pairs, normalised here."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import get_args

from rag_pipeline.config import RerankerConfig, RerankerKind
from rag_pipeline.index.common import check_texts
from rag_pipeline.model_source import model_revision

RERANKER_KINDS = get_args(RerankerKind)  # ("none", "cross-encoder", "flag")
DEFAULT_RERANKER_MODEL = "BAAI/bge-reranker-v2-m3"


def _sigmoid(value: float) -> float:
    return (
        1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))
    )


class Reranker(ABC):
    """A loaded reranker: ``score(query, texts)`` returns one float per text, higher = more relevant."""

    name: str
    config: RerankerConfig
    model: str
    source: str

    @abstractmethod
    def _logits(self, query: str, texts: list[str]) -> list[float]:
        """Raw relevance logits of (query, text) pairs."""

    @abstractmethod
    def _libraries(self) -> dict:
        """Versions of the libraries that compute the scores."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to ``query`` (sigmoid of the logit when ``normalize``)."""
        if not isinstance(query, str):
            raise TypeError(f"reranker {self.name}: query is {type(query).__name__}, expected str")
        texts = check_texts(texts, f"reranker {self.name}")
        if not texts:
            return []
        logits = [float(v) for v in self._logits(query, texts)]
        if len(logits) != len(texts):
            raise ValueError(
                f"reranker {self.name} returned {len(logits)} scores for {len(texts)} texts"
            )
        if not all(math.isfinite(v) for v in logits):
            raise ValueError(f"reranker {self.name} returned non-finite scores")
        return [_sigmoid(v) for v in logits] if self.config.normalize else logits

    def signature(self) -> dict:
        """Everything that determines the scores: kind, model, revision, max length, libraries."""
        if getattr(self, "_revision", None) is None:
            self._revision = model_revision(self.source)
        return {
            "kind": self.config.kind,
            "name": self.name,
            "model": self.model,
            "revision": self._revision,
            "max_length": self.config.max_length,
            "normalize": self.config.normalize,
            "score": "sigmoid(logit)" if self.config.normalize else "logit",
            "libraries": self._libraries(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
