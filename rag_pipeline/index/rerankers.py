"""Rerankers: score (question, passage) pairs with a cross-encoder after vector retrieval.

Kinds:
- ``none``: no reranking (``load_reranker`` returns None; final order = vector order).
- ``cross-encoder``: ``sentence_transformers.CrossEncoder`` by hub id or local directory.
- ``flag``: ``FlagEmbedding.FlagReranker`` (the notebook: BAAI/bge-reranker-v2-m3, normalize=True).

With ``normalize=True`` a score is the sigmoid of the model's logit (0..1, comparable across
questions); with ``normalize=False`` it is the raw logit. Both kinds compute the same thing.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.common import check_texts, config_from_dict, resolve_device
from rag_pipeline.index.embedders import model_slug
from rag_pipeline.model_source import model_revision, package_version, resolve_model_source

RERANKER_KINDS = ("none", "cross-encoder", "flag")
DEFAULT_RERANKER_MODEL = "BAAI/bge-reranker-v2-m3"


@dataclass(frozen=True)
class RerankerConfig:
    """Which reranker to load (``kind="none"``: none)."""

    kind: str = "none"
    model: str | None = None  # hub id or local path; None = BAAI/bge-reranker-v2-m3
    max_length: int = 512
    batch_size: int = 16
    normalize: bool = True
    device: str | None = None  # None = cuda when available, else cpu

    def __post_init__(self):
        if self.kind not in RERANKER_KINDS:
            raise ValueError(
                f"unknown reranker kind {self.kind!r}; expected one of {list(RERANKER_KINDS)}"
            )
        for name in ("max_length", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"reranker {name} must be a positive integer, got {value!r}")

    @classmethod
    def from_dict(cls, data: dict | None) -> RerankerConfig:
        """The config from a pipeline.yaml ``reranker`` section (None → no reranker)."""
        return config_from_dict(cls, data, "reranker")


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


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder by hub id or local directory (one relevance logit)."""

    def __init__(self, config: RerankerConfig):
        self.config = config
        self.model = config.model or DEFAULT_RERANKER_MODEL
        self.source = resolve_model_source(self.model)
        self.device = resolve_device(config.device)
        self._revision = None
        try:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(
                self.source, max_length=config.max_length, device=self.device
            )
        except OSError as exc:
            raise ModelUnavailableError(
                self.model, f"sentence-transformers CrossEncoder could not load it: {exc}"
            ) from exc
        if self._model.num_labels != 1:
            raise ValueError(
                f"reranker model {self.model!r} has {self._model.num_labels} labels; a reranker needs one relevance logit"
            )
        self.name = f"ce-{model_slug(self.model)}"

    def _logits(self, query: str, texts: list[str]) -> list[float]:
        import torch

        scores = self._model.predict(
            [(query, text) for text in texts],
            batch_size=self.config.batch_size,
            activation_fn=torch.nn.Identity(),  # raw logits; normalisation is ours, same for every kind
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(v) for v in scores.reshape(-1)]

    def _libraries(self) -> dict:
        return {
            "sentence_transformers": package_version("sentence-transformers"),
            "transformers": package_version("transformers"),
            "torch": package_version("torch"),
        }


class FlagReranker(Reranker):
    """FlagEmbedding's FlagReranker (bge-reranker-v2-m3 in the notebook), by hub id or local directory."""

    def __init__(self, config: RerankerConfig):
        self.config = config
        self.model = config.model or DEFAULT_RERANKER_MODEL
        self.source = resolve_model_source(self.model)
        self.device = resolve_device(config.device)
        self._revision = None
        self._lock = threading.Lock()
        try:
            from FlagEmbedding import FlagReranker as FlagEmbeddingReranker

            # One explicit device: without it FlagEmbedding starts a process pool over all GPUs.
            self._model = FlagEmbeddingReranker(
                self.source,
                use_fp16=self.device.startswith("cuda"),
                devices=self.device,
                batch_size=config.batch_size,
                max_length=config.max_length,
                normalize=False,
            )
        except OSError as exc:
            raise ModelUnavailableError(
                self.model, f"FlagEmbedding FlagReranker could not load it: {exc}"
            ) from exc
        self.name = f"flag-{model_slug(self.model)}"

    def _logits(self, query: str, texts: list[str]) -> list[float]:
        logits: list[float] = []
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            pairs = [(query, text) for text in texts[start : start + size]]
            with self._lock:
                # batch size above the count: one forward pass, and FlagEmbedding's bars stay off
                scores = self._model.compute_score(
                    pairs,
                    batch_size=len(pairs) + 1,
                    max_length=self.config.max_length,
                    normalize=False,
                )
            logits.extend(
                [float(scores)] if isinstance(scores, (int, float)) else [float(v) for v in scores]
            )
        return logits

    def _libraries(self) -> dict:
        return {
            "FlagEmbedding": package_version("FlagEmbedding"),
            "transformers": package_version("transformers"),
            "torch": package_version("torch"),
        }


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
