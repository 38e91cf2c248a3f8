"""Baselines without a language model: they bound what an LLM adds over copying the source.

- ``lead``: the first k sentences of abstract followed by conclusion (summaries).
- ``top-chunk``: the text of the best kept (reranked) chunk (answers).
"""

from __future__ import annotations

import re
import time

from rag_pipeline.generate.backends.base import (
    Backend,
    BatchCallback,
    GenerationResult,
    generate_item_by_item,
)
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest

# A sentence ends at . ! ? (optionally closed by a quote or bracket) before whitespace and a capital
# letter, so that "Fig. 3" and "e.g. the" do not split.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"»)\]]))\s+(?=[\"«(\[]?[A-ZА-ЯЁ])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (whitespace collapsed)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()] if text else []


def lead_sentences(abstract: str, conclusion: str, k: int) -> str:
    """The first ``k`` sentences of the abstract followed by the conclusion."""
    return " ".join((split_sentences(abstract) + split_sentences(conclusion))[:k])


class ExtractiveBackend(Backend):
    """Copies text from the request's context; no model is loaded."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.method = spec.extractive["method"]

    def _one(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        if self.method == "lead":
            if request.task != "summary":
                return GenerationResult(
                    error=f"extractive method 'lead' writes summaries, not {request.task}s"
                )
            output = lead_sentences(
                request.context.get("abstract", ""),
                request.context.get("conclusion", ""),
                self.spec.extractive.get("sentences", 3),
            )
            if not output:
                return GenerationResult(
                    error=f"no sentences in the abstract or conclusion of {request.paper_id!r}"
                )
        else:
            if request.task != "answer":
                return GenerationResult(
                    error=f"extractive method 'top-chunk' writes answers, not {request.task}s"
                )
            chunks = request.context.get("chunks") or []
            if not chunks:
                return GenerationResult(error=f"no retrieved chunk for {request.item_id!r}")
            output = chunks[0].strip()
        return GenerationResult(output=output, latency_s=time.perf_counter() - started)

    def generate(
        self, requests: list[GenerationRequest], progress: bool = True, on_batch: BatchCallback | None = None
    ) -> list[GenerationResult]:
        """One extract per request, in order (instant: no progress bar needed)."""
        return generate_item_by_item(self, requests, self._one, False, on_batch, f"extract {self.spec.name}")
