"""chrF: sacrebleu's sentence chrF with its defaults (character 6-grams, beta 2), 0..100."""

from __future__ import annotations

import functools

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric


@functools.lru_cache(maxsize=1)
def _chrf():
    from sacrebleu.metrics import CHRF  # sacrebleu is slow to import: only when chrF is first used

    return CHRF()


@functools.lru_cache(maxsize=1)
def chrf_signature() -> dict:
    """The signature of ``sentence_chrf``."""
    chrf = _chrf()
    chrf.sentence_score("a", ["a"])  # sacrebleu knows nrefs only after one evaluation
    return {
        "metric": "chrf",
        "sacrebleu": chrf.get_signature().format(),
        "call": "CHRF().sentence_score(hypothesis, [reference])",
        "scale": "0-100",
    }


def sentence_chrf(hypothesis: str, reference: str) -> Score:
    """Sentence chrF (sacrebleu defaults: character 6-grams, beta 2), 0..100."""
    return Score(float(_chrf().sentence_score(hypothesis, [reference]).score), chrf_signature())


@register_metric
class Chrf(Metric):
    family = "chrf"
    names = ("chrf",)
    direction = Direction.HIGHER
    needs_reference = True

    def signature(self, name: str) -> dict:
        return chrf_signature()

    def score(self, sample: Sample) -> dict[str, Score]:
        return {"chrf": sentence_chrf(sample.hypothesis, sample.reference)}
