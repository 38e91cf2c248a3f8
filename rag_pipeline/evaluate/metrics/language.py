"""Answer language: the share of Cyrillic letters (the expected answer language is Russian)."""

from __future__ import annotations

import re

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric

EXPECTED_LANGUAGE = "ru"
CYRILLIC_LETTER = re.compile(r"[\u0400-\u04FF]")
CYRILLIC_SHARE_SIGNATURE = {
    "metric": "cyrillic_share",
    "expected_language": EXPECTED_LANGUAGE,
    "definition": "Cyrillic letters (U+0400..U+04FF) / all letters (str.isalpha)",
}


def cyrillic_share(text: str) -> Score:
    """Share of the letters that are Cyrillic (the expected answer language is Russian)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        raise ValueError("output has no letters")
    share = sum(1 for char in letters if CYRILLIC_LETTER.match(char)) / len(letters)
    return Score(float(share), dict(CYRILLIC_SHARE_SIGNATURE))


@register_metric
class CyrillicShare(Metric):
    family = "language"
    names = ("cyrillic_share",)
    direction = Direction.HIGHER  # the expected answer language is Russian
    needs_reference = False

    def signature(self, name: str) -> dict:
        return dict(CYRILLIC_SHARE_SIGNATURE)

    def failure_signature(self, name: str) -> dict:
        return {"metric": name}  # as failed rows were first recorded, so their score_ids stay stable

    def score(self, sample: Sample) -> dict[str, Score]:
        return {"cyrillic_share": cyrillic_share(sample.hypothesis)}
