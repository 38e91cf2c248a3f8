"""Latency: the generation's recorded inference time in seconds (lower is better)."""

from __future__ import annotations

import math
from typing import Any

from rag_pipeline.evaluate.metrics.base import Direction, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import register_metric

LATENCY_SIGNATURE = {"metric": "latency_s", "source": "generations.latency_s"}


def latency(latency_s: Any) -> Score:
    """The generation's recorded latency in seconds (originally measured, also on a cache hit)."""
    if latency_s is None or (isinstance(latency_s, float) and math.isnan(latency_s)):
        raise ValueError("no latency recorded")
    value = float(latency_s)
    if value < 0:
        raise ValueError(f"negative latency {value}")
    return Score(value, dict(LATENCY_SIGNATURE))


@register_metric
class Latency(Metric):
    family = "latency"
    names = ("latency_s",)
    direction = Direction.LOWER
    needs_reference = False
    needs_hypothesis = False  # measured whatever the output

    def signature(self, name: str) -> dict:
        return dict(LATENCY_SIGNATURE)

    def failure_signature(self, name: str) -> dict:
        return {"metric": name}  # as failed rows were first recorded, so their score_ids stay stable

    def score(self, sample: Sample) -> dict[str, Score]:
        return {"latency_s": latency(sample.generation.get("latency_s"))}
