"""Answer length in characters and in words (descriptive: neither longer nor shorter is better)."""

from __future__ import annotations

import re

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric

WORD = re.compile(r"\w+")
DEFINITIONS = {"length_chars": "len(output)", "length_words": "count of \\w+ runs in output"}


def answer_length(text: str) -> dict[str, Score]:
    """Length in characters and in words (``\\w+`` runs)."""
    values = {"length_chars": len(text), "length_words": len(WORD.findall(text))}
    return {name: Score(float(value), {"metric": name, "definition": DEFINITIONS[name]}) for name, value in values.items()}


@register_metric
class AnswerLength(Metric):
    family = "length"
    names = ("length_chars", "length_words")
    direction = Direction.DESCRIPTIVE
    needs_reference = False
    needs_hypothesis = False  # an empty answer has length 0

    def signature(self, name: str) -> dict:
        return {"metric": name, "definition": DEFINITIONS[name]}

    def failure_signature(self, name: str) -> dict:
        return {"metric": name}  # as failed rows were first recorded, so their score_ids stay stable

    def score(self, sample: Sample) -> dict[str, Score]:
        return answer_length(sample.hypothesis)
