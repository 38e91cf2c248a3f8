"""BLEU: sacrebleu's sentence BLEU exactly as the reference notebook computed it (0..100).

``BLEU(tokenize="intl", smooth_method="exp", effective_order=True).sentence_score(hypothesis, [reference])``.
"""

from __future__ import annotations

import functools

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric


@functools.lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU  # sacrebleu is slow to import: only when BLEU is first used

    return BLEU(tokenize="intl", smooth_method="exp", effective_order=True)


@functools.lru_cache(maxsize=1)
def bleu_signature() -> dict:
    """The signature of ``sentence_bleu`` (sacrebleu's own signature string plus the call)."""
    bleu = _bleu()
    bleu.sentence_score("a", ["a"])  # sacrebleu knows nrefs only after one evaluation
    return {
        "metric": "bleu",
        "sacrebleu": bleu.get_signature().format(),
        "call": "BLEU(tokenize='intl', smooth_method='exp', effective_order=True)"
        ".sentence_score(hypothesis, [reference])",
        "scale": "0-100",
    }


def sentence_bleu(hypothesis: str, reference: str) -> Score:
    """Sentence BLEU exactly as the reference notebook computed it (0..100)."""
    return Score(float(_bleu().sentence_score(hypothesis, [reference]).score), bleu_signature())


@register_metric
class Bleu(Metric):
    family = "bleu"
    names = ("bleu",)
    direction = Direction.HIGHER
    needs_reference = True

    def signature(self, name: str) -> dict:
        return bleu_signature()

    def score(self, sample: Sample) -> dict[str, Score]:
        return {"bleu": sentence_bleu(sample.hypothesis, sample.reference)}
