"""Graded mode: each output alone, graded 1..5 for correctness against the reference."""

from __future__ import annotations

import re

import pandas as pd

from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.judge.core import JudgeMode, register_mode
from rag_pipeline.evaluate.judge.prompting import Messages, json_candidates, judge_messages

FORMAT_GRADED = '{"grade": 4}'


def graded_messages(task: str, context: str, reference: str, output: str) -> Messages:
    """Messages asking for a 1..5 correctness grade of one output against the reference."""
    instruction = (
        "Оцени правильность ответа A относительно эталона по шкале от 1 до 5: 1 — неверно или не по "
        "теме, 2 — в основном неверно, 3 — частично верно, 4 — верно с небольшими упущениями, "
        f"5 — полностью верно и полно. Верни только JSON: {FORMAT_GRADED}"
    )
    return judge_messages(task, context, reference, [output], "A", instruction)


def parse_grade(text: str) -> int | None:
    """A 1..5 grade from a judge's answer: JSON ``{"grade": 4}``, "Оценка: 4" or a lone digit."""
    for candidate in json_candidates(text):
        if isinstance(candidate, dict):
            for key in ("grade", "score", "оценка", "балл"):
                value = candidate.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() \
                        and 1 <= int(value) <= 5:
                    return int(value)
                if isinstance(value, str) and value.strip() in {"1", "2", "3", "4", "5"}:
                    return int(value.strip())
        if isinstance(candidate, int) and not isinstance(candidate, bool) and 1 <= candidate <= 5:
            return candidate
    match = re.search(r"(?:оценка|grade|score|балл)\D{0,12}?([1-5])(?!\d)", text, flags=re.IGNORECASE)
    if match:
        return int(match.group(1))
    digits = re.findall(r"(?<!\d)([1-5])(?![\d.,]\d)", text)
    if len(set(digits)) == 1 and not re.search(r"\d", re.sub(r"(?<!\d)[1-5](?![\d.,]\d)", "", text)):
        return int(digits[0])
    return None


@register_mode
class GradedMode(JudgeMode):
    name = "graded"
    verdict_column = "grade"
    score_metric = "judge_grade"
    direction = Direction.HIGHER
    min_models = 1

    def presentations(self, models, seed_text, n_permutations):
        return [(0, [model]) for model in models]

    def messages(self, item, outputs):
        [output] = outputs
        return graded_messages(item["task"], item["context"], item["reference"], output)

    def required_format(self, labels):
        return FORMAT_GRADED

    def parse(self, text, labels):
        return parse_grade(text)

    def verdict_value(self, verdict, label):
        return float(verdict)


def graded_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item x model: the 1..5 grade (metric ``judge_grade``)."""
    return GradedMode().item_scores(verdicts)
