"""Listwise mode: rank all models' outputs for an item 1..N.

The outputs are shown in N cyclic shifts of one base order, so every output appears once in every
position and a preference for a position cancels out in the mean rank over permutations.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.judge.core import JudgeMode, register_mode
from rag_pipeline.evaluate.judge.prompting import LABELS, Messages, as_label, json_candidates, judge_messages
from rag_pipeline.hashing import content_hash

FORMAT_LISTWISE = '{"ranking": [%s]}'


def _label_list(labels: str) -> str:
    return ", ".join(f'"{label}"' for label in labels)


def listwise_messages(task: str, context: str, reference: str, outputs: list[str]) -> Messages:
    """Messages asking to rank ``outputs`` (shown as A, B, C...) from best to worst."""
    labels = LABELS[: len(outputs)]
    instruction = (
        f"Ранжируй ответы {', '.join(labels)} от лучшего к худшему. Каждая метка — ровно один раз, "
        f"первая — лучший ответ. Верни только JSON: {FORMAT_LISTWISE % _label_list(labels)}"
    )
    return judge_messages(task, context, reference, outputs, labels, instruction)


def _ranking_from_json(value, labels: str) -> dict[str, float] | None:
    if isinstance(value, dict):
        for key in ("ranking", "rank", "order", "ranks", "ранжирование", "порядок"):
            if key in value:
                return _ranking_from_json(value[key], labels)
        # {"A": 2, "B": 1, "C": 3}: ranks per label (ties allowed)
        ranks = {}
        for key, rank in value.items():
            label = as_label(key, labels)
            if label is None or isinstance(rank, bool) or not isinstance(rank, (int, float)):
                return None
            ranks[label] = float(rank)
        if set(ranks) == set(labels) and all(1 <= r <= len(labels) for r in ranks.values()):
            return ranks
        return None
    if isinstance(value, list):
        order = [as_label(v, labels) for v in value]
        if None not in order and len(order) == len(labels) and set(order) == set(labels):
            return {label: float(i + 1) for i, label in enumerate(order)}
    return None


def parse_ranking(text: str, labels: str) -> dict[str, float] | None:
    """Rank per label (1 = best) from a judge's answer, or None when it cannot be read unambiguously.

    Accepts ``{"ranking": ["B", "A", "C"]}``, a bare JSON list, ``{"A": 2, "B": 1, "C": 3}``,
    1-based numbers standing for labels (``[2, 1, 3]`` = B best), and plain text such as
    ``B > A > C`` or a numbered list, with prose around it. Plain text must name every label
    exactly once.
    """
    for candidate in json_candidates(text):
        ranks = _ranking_from_json(candidate, labels)
        if ranks is not None:
            return ranks
    plain = re.findall(rf"(?<![A-Za-z])([{labels}])(?![A-Za-z])", text)
    if len(plain) == len(labels) and set(plain) == set(labels):
        return {label: float(i + 1) for i, label in enumerate(plain)}
    return None


def cyclic_orders(models: list[str], n_permutations: int | None, seed_text: str) -> list[list[str]]:
    """Cyclic shifts of one base order (shuffled deterministically from ``seed_text``).

    With ``n_permutations`` = N (the default) every model appears once in every position.
    """
    rng = np.random.default_rng(int(content_hash(seed_text, 8), 16))
    base = list(rng.permutation(sorted(models)))
    count = len(base) if n_permutations is None else max(1, min(n_permutations, len(base)))
    return [base[shift:] + base[:shift] for shift in range(count)]


@register_mode
class ListwiseMode(JudgeMode):
    name = "listwise"
    verdict_column = "rank"
    score_metric = "judge_rank"
    direction = Direction.LOWER  # rank 1 is the best
    min_models = 2

    def presentations(self, models, seed_text, n_permutations):
        return list(enumerate(cyclic_orders(models, n_permutations, seed_text)))

    def messages(self, item, outputs):
        return listwise_messages(item["task"], item["context"], item["reference"], outputs)

    def required_format(self, labels):
        return FORMAT_LISTWISE % _label_list(labels)

    def parse(self, text, labels):
        return parse_ranking(text, labels)

    def verdict_value(self, verdict, label):
        return verdict[label]


def listwise_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item x model: the mean listwise rank over the non-abstained permutations (metric ``judge_rank``).

    Each output appears in every position across the cyclic shifts, so the mean cancels position
    bias. The mean rank is kept as is (not re-ranked), which for one permutation of strict or
    tied ranks reproduces the notebook's mean ranks exactly.
    """
    return ListwiseMode().item_scores(verdicts)
