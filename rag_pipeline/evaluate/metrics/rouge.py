"""ROUGE-1/2/L precision, recall and F, with a Russian tokenizer (the reference notebook's).

``rouge_score.RougeScorer(..., use_stemmer=False, tokenizer=RussianTokenizer())`` and
``score(reference, hypothesis)``. rouge_score's default tokenizer keeps only ``[a-z0-9]``, so it
would score identical Russian texts 0; ours keeps ``[а-яё]+`` of the lower-cased text and stems
each word with NLTK's Russian Snowball stemmer.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import PackageNotFoundError, version

from rouge_score import tokenizers

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_STATS = ("precision", "recall", "fmeasure")
ROUGE_METRICS = tuple(f"{kind}_{stat}" for kind in ROUGE_TYPES for stat in ROUGE_STATS)


@functools.cache
def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def _russian_stemmer():
    from nltk.stem.snowball import SnowballStemmer  # nltk is slow to import: only when ROUGE is first used

    return SnowballStemmer("russian")


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _russian_stemmer().stem(word)


class RussianTokenizer(tokenizers.Tokenizer):
    """rouge_score tokenizer: lower-case, keep ``[а-яё]+``, stem with NLTK's Russian Snowball."""

    RUSSIAN_WORD = re.compile(r"[а-яё]+")
    description = "lowercase; keep [а-яё]+; nltk SnowballStemmer('russian')"

    def tokenize(self, text: str) -> list[str]:
        return [_stem(word) for word in self.RUSSIAN_WORD.findall(text.lower())]


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer  # pulls in nltk and absl: only when ROUGE is first used

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False, tokenizer=RussianTokenizer())


def rouge_signature(metric: str) -> dict:
    """The signature of one ROUGE value, e.g. ``rouge_signature("rougeL_fmeasure")``."""
    kind, stat = metric.split("_", 1)
    return {
        "metric": metric,
        "rouge_type": kind,
        "statistic": stat,
        "tokenizer": RussianTokenizer.description,
        "use_stemmer": False,
        "call": "RougeScorer([...], use_stemmer=False, tokenizer=RussianTokenizer()).score(reference, hypothesis)",
        "rouge_score": _package_version("rouge-score"),
        "nltk": _package_version("nltk"),
    }


def rouge(hypothesis: str, reference: str) -> dict[str, Score]:
    """ROUGE-1/2/L precision, recall and F with the Russian tokenizer; keys like ``rouge1_fmeasure``."""
    scores = _rouge_scorer().score(reference, hypothesis)
    return {
        f"{kind}_{stat}": Score(float(getattr(scores[kind], stat)), rouge_signature(f"{kind}_{stat}"))
        for kind in ROUGE_TYPES
        for stat in ROUGE_STATS
    }


@register_metric
class Rouge(Metric):
    family = "rouge"
    names = ROUGE_METRICS
    direction = Direction.HIGHER
    needs_reference = True

    def signature(self, name: str) -> dict:
        return rouge_signature(name)

    def score(self, sample: Sample) -> dict[str, Score]:
        return rouge(sample.hypothesis, sample.reference)
