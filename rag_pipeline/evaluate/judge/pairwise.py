"""Pairwise mode: every pair of outputs in both orders; when the verdict flips with the order the
pair counts as a tie."""

from __future__ import annotations

import itertools
import re

import pandas as pd

from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.judge.core import ITEM_SCORE_COLUMNS, JudgeMode, register_mode
from rag_pipeline.evaluate.judge.prompting import Messages, as_label, json_candidates, judge_messages

FORMAT_PAIRWISE = '{"winner": "A"}, {"winner": "B"} или {"winner": "tie"}'
TIE = re.compile(r"(?<!\w)(ничь\w*|равноценн\w*|равнозначн\w*|одинаков\w*|tie|draw)(?!\w)", re.IGNORECASE)


def pairwise_messages(task: str, context: str, reference: str, first: str, second: str) -> Messages:
    """Messages asking which of two outputs (A, B) is better, or a tie."""
    instruction = f"Какой ответ лучше: A или B? Если они равноценны — ничья. Верни только JSON: {FORMAT_PAIRWISE}"
    return judge_messages(task, context, reference, [first, second], "AB", instruction)


def parse_pairwise(text: str) -> str | None:
    """"A", "B" or "tie" from a judge's pairwise answer; None when unreadable or ambiguous."""
    for candidate in json_candidates(text):
        if isinstance(candidate, dict):
            for key in ("winner", "better", "победитель", "лучший"):
                if key in candidate:
                    value = str(candidate[key]).strip()
                    if TIE.search(value):
                        return "tie"
                    label = as_label(value, "AB")
                    if label:
                        return label
    mentioned = set(re.findall(r"(?<![A-Za-z])([AB])(?![A-Za-z])", text))
    tie = bool(TIE.search(text))
    if tie and len(mentioned) != 1:  # "ничья", "A и B равноценны"
        return "tie"
    if len(mentioned) == 1 and not tie:
        return mentioned.pop()
    return None


@register_mode
class PairwiseMode(JudgeMode):
    name = "pairwise"
    verdict_column = "win"
    score_metric = "judge_win_rate"
    direction = Direction.HIGHER
    min_models = 2

    def presentations(self, models, seed_text, n_permutations):
        return [(permutation, list(order))
                for model_a, model_b in itertools.combinations(models, 2)
                for permutation, order in enumerate(((model_a, model_b), (model_b, model_a)))]

    def messages(self, item, outputs):
        first, second = outputs
        return pairwise_messages(item["task"], item["context"], item["reference"], first, second)

    def required_format(self, labels):
        return FORMAT_PAIRWISE

    def parse(self, text, labels):
        return parse_pairwise(text)

    def verdict_value(self, verdict, label):
        return 0.5 if verdict == "tie" else float(verdict == label)

    def opponent(self, shown, model):
        first, second = shown
        return second if model == first else first

    def item_scores(self, verdicts: pd.DataFrame) -> pd.DataFrame:
        """Per item x model: mean score against the other models (ties and flipped orders = 0.5)."""
        outcomes = pairwise_outcomes(verdicts)
        if outcomes.empty:
            return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
        both = pd.concat([
            outcomes.rename(columns={"model_a": "model"}).assign(value=outcomes["score_a"]),
            outcomes.rename(columns={"model_b": "model"}).assign(value=1.0 - outcomes["score_a"]),
        ], ignore_index=True)
        table = both.groupby(["task", "paper_id", "item_id", "model", "judge"], as_index=False)["value"].mean()
        return table.assign(metric=self.score_metric)[ITEM_SCORE_COLUMNS]


def pairwise_outcomes(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One outcome per item x pair, combining both presentation orders.

    ``score_a`` is 1 / 0 when both orders agree on the winner, 0.5 when they flip or call a tie;
    with one order abstained the other decides alone. ``consistent`` is True / False when both
    orders were read ("" when only one was).
    """
    columns = ["task", "paper_id", "item_id", "model_a", "model_b", "score_a", "orders", "consistent", "judge"]
    usable = verdicts[(verdicts["mode"] == PairwiseMode.name) & ~verdicts["abstained"]]
    if usable.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, paper, item, judge_name), group in usable.groupby(["task", "paper_id", "item_id", "judge"], sort=True):
        pairs: dict[tuple[str, str], list[float]] = {}
        for row in group.itertuples():
            model_a, model_b = sorted((row.model, row.opponent))
            if row.model == model_a:
                pairs.setdefault((model_a, model_b), []).append(float(row.win))
        for (model_a, model_b), wins in sorted(pairs.items()):
            if len(wins) >= 2:
                consistent = len(set(wins)) == 1
                score = wins[0] if consistent else 0.5
            else:
                consistent, score = "", wins[0]
            rows.append({"task": task, "paper_id": paper, "item_id": item, "model_a": model_a, "model_b": model_b,
                         "score_a": score, "orders": len(wins), "consistent": consistent, "judge": judge_name})
    frame = pd.DataFrame(rows, columns=columns)
    frame["consistent"] = frame["consistent"].astype(str)
    return frame


def pairwise_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item x model: mean score against the other models (metric ``judge_win_rate``, ties = 0.5)."""
    return PairwiseMode().item_scores(verdicts)
