"""``flag``: ``FlagEmbedding.FlagReranker`` (the notebook: BAAI/bge-reranker-v2-m3, normalize=True)."""

from __future__ import annotations

import threading

from rag_pipeline.config import RerankerConfig
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.common import resolve_device
from rag_pipeline.index.embedders.base import model_slug
from rag_pipeline.index.rerankers.base import DEFAULT_RERANKER_MODEL, Reranker
from rag_pipeline.model_source import package_version, resolve_model_source


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
            # Imported on use: FlagEmbedding pulls in torch and transformers (seconds).
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
