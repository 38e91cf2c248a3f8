"""``cross-encoder``: ``sentence_transformers.CrossEncoder`` by hub id or local directory."""

from __future__ import annotations

from rag_pipeline.config import RerankerConfig
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.common import resolve_device
from rag_pipeline.index.embedders.base import model_slug
from rag_pipeline.index.rerankers.base import DEFAULT_RERANKER_MODEL, Reranker
from rag_pipeline.model_source import package_version, resolve_model_source


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder by hub id or local directory (one relevance logit)."""

    def __init__(self, config: RerankerConfig):
        self.config = config
        self.model = config.model or DEFAULT_RERANKER_MODEL
        self.source = resolve_model_source(self.model)
        self.device = resolve_device(config.device)
        self._revision = None
        try:
            # sentence_transformers and torch are imported on use: they take seconds to import.
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
