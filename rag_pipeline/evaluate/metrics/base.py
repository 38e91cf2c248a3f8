"""What a metric is: a family of named values for one generation, each with the signature that
reproduces it, and the direction in which it is better."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from rag_pipeline.evaluate.direction import Direction


@dataclass(frozen=True)
class Score:
    """One metric value and the signature that reproduces it."""

    value: float
    signature: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """What a metric sees of one generation."""

    hypothesis: str  # the output; "" when there is none
    reference: str | None  # the item's reference text; None when the item has none
    generation: Mapping[str, Any]  # the whole generations row (latency_s, tokens...)


class DocumentEmbedder(Protocol):
    """What the cosine metric needs from an embedder (rag_pipeline.index.embedders)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def signature(self) -> dict: ...


class Metric:
    """One metric family: the values it yields for a generation and what reproduces them.

    A subclass sets the class attributes, implements ``signature`` and ``score`` (or ``score_all``
    to score many samples in one go) and is decorated with ``@register_metric``.
    ``score_generations`` checks the preconditions the attributes state before it calls ``score``,
    so ``score`` only sees a sample it can score; whatever it raises becomes the rows' error.
    """

    family: ClassVar[str]  # what a caller selects ("rouge"); also the prefix of its errors
    names: ClassVar[tuple[str, ...]]  # the metric rows it yields ("rouge1_precision", ...)
    direction: ClassVar[Direction]  # of every name
    needs_reference: ClassVar[bool]  # scored against the item's reference text
    needs_hypothesis: ClassVar[bool] = True  # an empty output fails it
    needs_embedder: ClassVar[bool] = False  # built with the run's embedder: ``cls(embedder)``

    def signature(self, name: str) -> dict:
        """What reproduces the value ``name`` (library versions, tokenizer, call...)."""
        raise NotImplementedError

    def failure_signature(self, name: str) -> dict:
        """The signature on a row without a value: what would have been computed."""
        return self.signature(name)

    def score(self, sample: Sample) -> dict[str, Score]:
        """Every name's value for one sample; raise to fail the sample."""
        raise NotImplementedError

    def score_all(self, samples: Sequence[Sample]) -> list[dict[str, Score] | Exception]:
        """Each sample's values, or the exception that failed it, in order.

        One by one by default; a metric that is cheaper in bulk (one embedding call) overrides
        this, and an exception it raises fails every sample.
        """
        outcomes: list[dict[str, Score] | Exception] = []
        for sample in samples:
            try:
                outcomes.append(self.score(sample))
            except Exception as exc:  # noqa: BLE001 - a metric failure is a row with its reason, not a crash
                outcomes.append(exc)
        return outcomes
