"""LLM-as-a-judge over any chat backend, with position debiasing, caching and abstentions.

The judge is any function ``complete(messages: list[dict]) -> str`` (an OpenAI-compatible API, a
local transformers model...). Model names never reach the judge: outputs are shown under
anonymous labels A, B, C... Three modes:

- ``listwise``: rank all models' outputs for an item 1..N. The outputs are shown in N cyclic
  shifts of one base order, so every output appears once in every position and a preference for
  a position cancels out in the mean rank over permutations.
- ``pairwise``: every pair in both orders; when the verdict flips with the order the pair counts
  as a tie.
- ``graded``: each output alone, graded 1..5 for correctness against the reference.

Prompts are Russian (the study is Russian-first) and contain the question (or the paper's title
for a summary), the reference and the outputs. Answers are parsed robustly (JSON or plain lists,
labels or numbers, surrounding prose); an unparseable answer gets one retry that repeats the
required format, then an abstention row keeping the raw text, never NaN. Every call is cached in a
``ContentCache`` under the hash of the judge identity and the messages, so re-running unchanged
inputs makes no calls.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rag_pipeline.cache import ContentCache
from rag_pipeline.hashing import content_hash

Messages = list[dict]
CompleteFn = Callable[[Messages], str]

MODES = ("listwise", "pairwise", "graded")
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PROMPT_VERSION = "judge-ru-v1"
MAX_OUTPUT_CHARS = 4000
VERDICT_COLUMNS = (
    "judgment_id", "item_id", "paper_id", "task", "model", "mode", "permutation", "position", "label",
    "opponent", "rank", "win", "grade", "abstained", "reason", "raw", "judge", "prompt_hash",
)
# Cyrillic letters that look like Latin labels (a judge writing in Russian may use them).
HOMOGLYPHS = str.maketrans({"А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "К": "K", "М": "M",
                            "О": "O", "Р": "P", "Т": "T", "Х": "X"})
TIE = re.compile(r"(?<!\w)(ничь\w*|равноценн\w*|равнозначн\w*|одинаков\w*|tie|draw)(?!\w)", re.IGNORECASE)


@dataclass
class Judge:
    """A chat function plus what identifies it (name, model, revision, decoding) and its cache."""

    complete: CompleteFn
    name: str
    identity: dict = field(default_factory=dict)
    cache: ContentCache | None = None
    calls: int = 0  # calls that reached ``complete`` (cache misses)

    def identity_key(self) -> dict:
        """What the cache key and judgment ids use: the name, the identity and the prompt version."""
        return {"name": self.name, **self.identity, "prompt_version": PROMPT_VERSION}

    def ask(self, messages: Messages) -> str:
        """The judge's answer to ``messages``: from the cache when present, else one call (then cached)."""
        key = ContentCache.key_for({"judge": self.identity_key(), "messages": messages})
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and isinstance(hit.get("raw"), str):
                return hit["raw"]
        self.calls += 1
        raw = self.complete(messages)
        if not isinstance(raw, str):
            raise TypeError(f"judge {self.name!r} returned {type(raw).__name__}, expected str")
        if self.cache is not None:
            self.cache.put(key, {"raw": raw, "judge": self.name})
        return raw


# ------------------------------------------------------------------------------------ prompts

SYSTEM_PROMPT = (
    "Ты — беспристрастный эксперт, который оценивает ответы языковых моделей на русском языке. "
    "Имена моделей скрыты, порядок ответов случайный и ничего не говорит об их качестве. "
    "Оценивай фактическую точность относительно эталона, полноту, отсутствие выдумок и ясность. "
    "Не предпочитай ответ только за его длину."
)
FORMAT_LISTWISE = '{"ranking": [%s]}'
FORMAT_PAIRWISE = '{"winner": "A"}, {"winner": "B"} или {"winner": "tie"}'
FORMAT_GRADED = '{"grade": 4}'


def _clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " [...обрезано]"


def _task_header(task: str, context: str) -> str:
    if task == "summary":
        return f"Задача: краткое изложение (суммаризация) научной статьи.\nСтатья: {context or '(название не указано)'}"
    return f"Задача: ответ на вопрос по научной статье.\nВопрос: {context or '(вопрос не указан)'}"


def _outputs_block(outputs: list[str], labels: str) -> str:
    return "\n\n".join(f"Ответ {label}:\n<<<\n{_clip(text)}\n>>>" for label, text in zip(labels, outputs))


def listwise_messages(task: str, context: str, reference: str, outputs: list[str]) -> Messages:
    """Messages asking to rank ``outputs`` (shown as A, B, C...) from best to worst."""
    labels = LABELS[: len(outputs)]
    example = ", ".join(f'"{label}"' for label in labels)
    user = (
        f"{_task_header(task, context)}\n\nЭталон:\n<<<\n{_clip(reference)}\n>>>\n\n"
        f"{_outputs_block(outputs, labels)}\n\n"
        f"Ранжируй ответы {', '.join(labels)} от лучшего к худшему. Каждая метка — ровно один раз, "
        f"первая — лучший ответ. Верни только JSON: {FORMAT_LISTWISE % example}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def pairwise_messages(task: str, context: str, reference: str, first: str, second: str) -> Messages:
    """Messages asking which of two outputs (A, B) is better, or a tie."""
    user = (
        f"{_task_header(task, context)}\n\nЭталон:\n<<<\n{_clip(reference)}\n>>>\n\n"
        f"{_outputs_block([first, second], 'AB')}\n\n"
        f"Какой ответ лучше: A или B? Если они равноценны — ничья. Верни только JSON: {FORMAT_PAIRWISE}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def graded_messages(task: str, context: str, reference: str, output: str) -> Messages:
    """Messages asking for a 1..5 correctness grade of one output against the reference."""
    user = (
        f"{_task_header(task, context)}\n\nЭталон:\n<<<\n{_clip(reference)}\n>>>\n\n"
        f"{_outputs_block([output], 'A')}\n\n"
        "Оцени правильность ответа A относительно эталона по шкале от 1 до 5: 1 — неверно или не по "
        "теме, 2 — в основном неверно, 3 — частично верно, 4 — верно с небольшими упущениями, "
        f"5 — полностью верно и полно. Верни только JSON: {FORMAT_GRADED}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def retry_messages(messages: Messages, raw: str, required_format: str) -> Messages:
    """The conversation extended by the unparseable answer and a reminder of the format."""
    return [
        *messages,
        {"role": "assistant", "content": raw},
        {"role": "user", "content": f"Не удалось разобрать ответ. Ответь строго одним JSON без пояснений: {required_format}"},
    ]


# ------------------------------------------------------------------------------------ parsing


def _json_candidates(text: str) -> list:
    """JSON values found in ``text``: the whole text, fenced blocks, then every {...} / [...] span."""
    found = []
    spans = [text.strip()]
    spans += re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    spans += re.findall(r"\{[^{}]*\}", text, flags=re.DOTALL)
    spans += re.findall(r"\[[^\[\]]*\]", text, flags=re.DOTALL)
    for span in spans:
        try:
            found.append(json.loads(span))
        except (json.JSONDecodeError, TypeError):
            continue
    return found


def _as_label(value, labels: str) -> str | None:
    """A label from a JSON value: "B", "Ответ B", "[B]", a Cyrillic look-alike, or a 1-based number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer() and 1 <= int(value) <= len(labels):
        return labels[int(value) - 1]
    if not isinstance(value, str):
        return None
    text = value.strip().translate(HOMOGLYPHS)
    if text.isdigit() and 1 <= int(text) <= len(labels):
        return labels[int(text) - 1]
    matches = set(re.findall(rf"(?<![A-Za-z])([{labels}])(?![A-Za-z])", text))
    return matches.pop() if len(matches) == 1 else None


def _ranking_from_json(value, labels: str) -> dict[str, float] | None:
    if isinstance(value, dict):
        for key in ("ranking", "rank", "order", "ranks", "ранжирование", "порядок"):
            if key in value:
                return _ranking_from_json(value[key], labels)
        # {"A": 2, "B": 1, "C": 3}: ranks per label (ties allowed)
        ranks = {}
        for key, rank in value.items():
            label = _as_label(key, labels)
            if label is None or isinstance(rank, bool) or not isinstance(rank, (int, float)):
                return None
            ranks[label] = float(rank)
        if set(ranks) == set(labels) and all(1 <= r <= len(labels) for r in ranks.values()):
            return ranks
        return None
    if isinstance(value, list):
        order = [_as_label(v, labels) for v in value]
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
    for candidate in _json_candidates(text):
        ranks = _ranking_from_json(candidate, labels)
        if ranks is not None:
            return ranks
    plain = re.findall(rf"(?<![A-Za-z])([{labels}])(?![A-Za-z])", text)
    if len(plain) == len(labels) and set(plain) == set(labels):
        return {label: float(i + 1) for i, label in enumerate(plain)}
    return None


def parse_pairwise(text: str) -> str | None:
    """"A", "B" or "tie" from a judge's pairwise answer; None when unreadable or ambiguous."""
    for candidate in _json_candidates(text):
        if isinstance(candidate, dict):
            for key in ("winner", "better", "победитель", "лучший"):
                if key in candidate:
                    value = str(candidate[key]).strip()
                    if TIE.search(value):
                        return "tie"
                    label = _as_label(value, "AB")
                    if label:
                        return label
    mentioned = set(re.findall(r"(?<![A-Za-z])([AB])(?![A-Za-z])", text))
    tie = bool(TIE.search(text))
    if tie and len(mentioned) != 1:  # "ничья", "A и B равноценны"
        return "tie"
    if len(mentioned) == 1 and not tie:
        return mentioned.pop()
    return None


def parse_grade(text: str) -> int | None:
    """A 1..5 grade from a judge's answer: JSON ``{"grade": 4}``, "Оценка: 4" or a lone digit."""
    for candidate in _json_candidates(text):
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


# ----------------------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class _Call:
    """One judge question: its messages, how to parse the answer and the required format."""

    messages: Messages
    parse: Callable[[str], object]
    required_format: str


def _ask_with_retry(judge: Judge, call: _Call) -> tuple[object | None, str, str]:
    """(parsed verdict or None, raw text, abstention reason). One retry on an unparseable answer."""
    try:
        raw = judge.ask(call.messages)
    except Exception as exc:  # noqa: BLE001 - any backend failure is an abstention with its reason
        return None, "", f"judge call failed: {type(exc).__name__}: {exc}"
    parsed = call.parse(raw)
    if parsed is not None:
        return parsed, raw, ""
    try:
        retry_raw = judge.ask(retry_messages(call.messages, raw, call.required_format))
    except Exception as exc:  # noqa: BLE001 - as above
        return None, raw, f"unparseable answer; retry failed: {type(exc).__name__}: {exc}"
    parsed = call.parse(retry_raw)
    if parsed is not None:
        return parsed, retry_raw, ""
    return None, f"{raw}\n---retry---\n{retry_raw}", "unparseable answer after one retry"


def verdict_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Verdict rows with the fixed columns and dtypes (rank / win / grade nullable floats)."""
    frame = pd.DataFrame(list(rows), columns=list(VERDICT_COLUMNS))
    for column in ("rank", "win", "grade"):
        frame[column] = pd.array([None if pd.isna(v) else float(v) for v in frame[column]], dtype="Float64")
    for column in ("permutation", "position"):
        frame[column] = frame[column].astype("int64")
    frame["abstained"] = frame["abstained"].astype(bool)
    for column in ("judgment_id", "item_id", "paper_id", "task", "model", "mode", "label", "opponent", "reason",
                   "raw", "judge", "prompt_hash"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def cyclic_orders(models: list[str], n_permutations: int | None, seed_text: str) -> list[list[str]]:
    """Cyclic shifts of one base order (shuffled deterministically from ``seed_text``).

    With ``n_permutations`` = N (the default) every model appears once in every position.
    """
    rng = np.random.default_rng(int(content_hash(seed_text, 8), 16))
    base = list(rng.permutation(sorted(models)))
    count = len(base) if n_permutations is None else max(1, min(n_permutations, len(base)))
    return [base[shift:] + base[:shift] for shift in range(count)]


def _row(judge: Judge, item: dict, model: str, mode: str, permutation: int, position: int, label: str,
         messages: Messages, opponent: str = "", rank=None, win=None, grade=None, reason: str = "",
         raw: str = "") -> dict:
    prompt_hash = content_hash(messages)
    return {
        "judgment_id": content_hash({"judge": judge.identity_key(), "prompt_hash": prompt_hash, "mode": mode,
                                     "item_id": item["item_id"], "model": model, "permutation": permutation,
                                     "opponent": opponent}),
        "item_id": item["item_id"], "paper_id": item["paper_id"], "task": item["task"], "model": model,
        "mode": mode, "permutation": permutation, "position": position, "label": label, "opponent": opponent,
        "rank": rank, "win": win, "grade": grade, "abstained": bool(reason), "reason": reason, "raw": raw,
        "judge": judge.name, "prompt_hash": prompt_hash,
    }


def _items(generations: pd.DataFrame, references: dict[str, str], contexts: dict[str, str]) -> list[dict]:
    """Judgeable items: (task, item) groups of successful, non-empty outputs that have a reference."""
    usable = generations[(generations["error"].fillna("") == "") & (generations["output"].fillna("").str.strip() != "")]
    items = []
    for (task, item_id), group in usable.groupby(["task", "item_id"], sort=True):
        reference = references.get(str(item_id))
        if not reference:
            continue  # nothing to judge against; metrics record the missing reference
        group = group.drop_duplicates("model", keep="last")
        items.append({
            "task": task, "item_id": str(item_id), "paper_id": str(group["paper_id"].iloc[0]),
            "reference": reference, "context": contexts.get(str(item_id), ""),
            "outputs": dict(zip(group["model"], group["output"])),
        })
    return items


def run_judge(
    generations: pd.DataFrame,
    references: dict[str, str],
    judge: Judge,
    modes: Iterable[str] = ("listwise",),
    contexts: dict[str, str] | None = None,
    n_permutations: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Judge every item's outputs across models; one verdict row per item x model x mode x permutation.

    ``generations``: rows of the generations schema (several models, same items). ``references``:
    reference text by item id. ``contexts``: what the judge sees as the task, by item id (the
    question for an answer, the paper title for a summary). Failed or empty generations and
    items without a reference are not judged. ``n_permutations`` limits the listwise cyclic
    shifts (default: one per model, which cancels position bias).
    """
    modes = list(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown judge mode(s) {unknown}; choose from {list(MODES)}")
    missing = [c for c in ("task", "item_id", "paper_id", "model", "output", "error") if c not in generations.columns]
    if missing:
        raise ValueError(f"generations frame lacks columns {missing}")
    items = _items(generations, references, contexts or {})
    rows: list[dict] = []
    for item in tqdm(items, desc=f"judge {judge.name}", disable=not progress, unit="item"):
        models = sorted(item["outputs"])
        for mode in modes:
            if mode == "listwise" and len(models) >= 2:
                rows.extend(_judge_listwise(judge, item, models, n_permutations))
            elif mode == "pairwise" and len(models) >= 2:
                rows.extend(_judge_pairwise(judge, item, models))
            elif mode == "graded":
                rows.extend(_judge_graded(judge, item, models))
    return verdict_frame(rows)


def _judge_listwise(judge: Judge, item: dict, models: list[str], n_permutations: int | None) -> list[dict]:
    rows = []
    for permutation, order in enumerate(cyclic_orders(models, n_permutations, f"{item['task']}|{item['item_id']}")):
        labels = LABELS[: len(order)]
        messages = listwise_messages(item["task"], item["context"], item["reference"], [item["outputs"][m] for m in order])
        example = ", ".join(f'"{label}"' for label in labels)
        call = _Call(messages, lambda text, labels=labels: parse_ranking(text, labels), FORMAT_LISTWISE % example)
        ranks, raw, reason = _ask_with_retry(judge, call)
        for position, (model, label) in enumerate(zip(order, labels), start=1):
            rank = ranks[label] if ranks else None
            rows.append(_row(judge, item, model, "listwise", permutation, position, label, messages,
                             rank=rank, reason=reason, raw=raw))
    return rows


def _judge_pairwise(judge: Judge, item: dict, models: list[str]) -> list[dict]:
    rows = []
    for model_a, model_b in itertools.combinations(models, 2):
        for permutation, (first, second) in enumerate(((model_a, model_b), (model_b, model_a))):
            messages = pairwise_messages(item["task"], item["context"], item["reference"],
                                         item["outputs"][first], item["outputs"][second])
            winner, raw, reason = _ask_with_retry(judge, _Call(messages, parse_pairwise, FORMAT_PAIRWISE))
            for position, (model, opponent, label) in enumerate(((first, second, "A"), (second, first, "B")), start=1):
                win = None if winner is None else (0.5 if winner == "tie" else float(winner == label))
                rows.append(_row(judge, item, model, "pairwise", permutation, position, label, messages,
                                 opponent=opponent, win=win, reason=reason, raw=raw))
    return rows


def _judge_graded(judge: Judge, item: dict, models: list[str]) -> list[dict]:
    rows = []
    for model in models:
        messages = graded_messages(item["task"], item["context"], item["reference"], item["outputs"][model])
        grade, raw, reason = _ask_with_retry(judge, _Call(messages, parse_grade, FORMAT_GRADED))
        rows.append(_row(judge, item, model, "graded", 0, 1, "A", messages,
                         grade=None if grade is None else float(grade), reason=reason, raw=raw))
    return rows


# -------------------------------------------------------------------------------- aggregation

ITEM_SCORE_COLUMNS = ["task", "paper_id", "item_id", "model", "metric", "value", "judge"]


def listwise_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item x model: the mean listwise rank over the non-abstained permutations (metric ``judge_rank``).

    Each output appears in every position across the cyclic shifts, so the mean cancels position
    bias. The mean rank is kept as is (not re-ranked), which for one permutation of strict or
    tied ranks reproduces the notebook's mean ranks exactly.
    """
    usable = verdicts[(verdicts["mode"] == "listwise") & ~verdicts["abstained"]]
    if usable.empty:
        return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    table = (usable.assign(value=usable["rank"].astype(float))
             .groupby(["task", "paper_id", "item_id", "model", "judge"], as_index=False)["value"].mean())
    return table.assign(metric="judge_rank")[ITEM_SCORE_COLUMNS]


def pairwise_outcomes(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One outcome per item x pair, combining both presentation orders.

    ``score_a`` is 1 / 0 when both orders agree on the winner, 0.5 when they flip or call a tie;
    with one order abstained the other decides alone. ``consistent`` is True / False when both
    orders were read ("" when only one was).
    """
    columns = ["task", "paper_id", "item_id", "model_a", "model_b", "score_a", "orders", "consistent", "judge"]
    usable = verdicts[(verdicts["mode"] == "pairwise") & ~verdicts["abstained"]]
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
    outcomes = pairwise_outcomes(verdicts)
    if outcomes.empty:
        return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    both = pd.concat([
        outcomes.rename(columns={"model_a": "model"}).assign(value=outcomes["score_a"]),
        outcomes.rename(columns={"model_b": "model"}).assign(value=1.0 - outcomes["score_a"]),
    ], ignore_index=True)
    table = both.groupby(["task", "paper_id", "item_id", "model", "judge"], as_index=False)["value"].mean()
    return table.assign(metric="judge_win_rate")[ITEM_SCORE_COLUMNS]


def graded_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item x model: the 1..5 grade (metric ``judge_grade``)."""
    usable = verdicts[(verdicts["mode"] == "graded") & ~verdicts["abstained"]]
    if usable.empty:
        return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    table = (usable.assign(value=usable["grade"].astype(float))
             .groupby(["task", "paper_id", "item_id", "model", "judge"], as_index=False)["value"].mean())
    return table.assign(metric="judge_grade")[ITEM_SCORE_COLUMNS]


def judge_item_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """All judge-derived per-item scores: ``judge_rank``, ``judge_win_rate``, ``judge_grade``."""
    if verdicts is None or verdicts.empty:
        return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    parts = [listwise_scores(verdicts), pairwise_scores(verdicts), graded_scores(verdicts)]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ITEM_SCORE_COLUMNS)


# -------------------------------------------------------------------------------- reliability


def judge_reliability(verdicts: pd.DataFrame, reference_ranks: pd.DataFrame | None = None) -> dict:
    """How far the judge can be trusted, as plain numbers (None with a note where undefined).

    - ``abstention_rate``: share of verdict rows the judge abstained on.
    - ``position_consistency_pairwise``: share of pairs whose verdict is the same in both orders.
    - ``position_consistency_listwise``: share of items whose ranking of the models is identical
      in every cyclic shift.
    - ``position_consistency``: the pairwise value when pairwise verdicts exist, else the listwise.
    - ``first_position_win_rate``: share of decided pairwise calls won by the output shown first
      (0.5 = no position bias).
    - ``kendall_tau``: agreement of the listwise mean ranks with ``reference_ranks`` (rows
      ``task, item_id, model, rank``; e.g. the notebook's GPT-4o ranks): scipy's tau-b per item,
      then the mean over items (items where either ranking is constant are skipped, tau is
      undefined there); ``kendall_tau_items`` counts the items used.
    - ``n_items``: judged items.
    """
    from scipy.stats import kendalltau

    result: dict = {"n_items": 0, "abstention_rate": None, "position_consistency": None,
                    "position_consistency_pairwise": None, "position_consistency_listwise": None,
                    "first_position_win_rate": None, "kendall_tau": None, "kendall_tau_items": 0,
                    "kendall_tau_method": "scipy.stats.kendalltau (tau-b) per item, mean over items",
                    "notes": []}
    if verdicts is None or verdicts.empty:
        result["notes"].append("no verdicts")
        return result
    result["n_items"] = int(verdicts[["task", "item_id"]].drop_duplicates().shape[0])
    result["abstention_rate"] = float(verdicts["abstained"].mean())

    outcomes = pairwise_outcomes(verdicts)
    both = outcomes[outcomes["orders"] >= 2] if not outcomes.empty else outcomes
    if not both.empty:
        result["position_consistency_pairwise"] = float((both["consistent"] == "True").mean())
    pairwise = verdicts[(verdicts["mode"] == "pairwise") & ~verdicts["abstained"] & (verdicts["position"] == 1)]
    decided = pairwise[pairwise["win"].astype(float) != 0.5]
    if not decided.empty:
        result["first_position_win_rate"] = float(decided["win"].astype(float).mean())

    listwise = verdicts[(verdicts["mode"] == "listwise") & ~verdicts["abstained"]]
    if not listwise.empty:
        stable = []
        for _, group in listwise.groupby(["task", "item_id", "judge"]):
            rankings = {tuple(sorted(zip(g["model"], g["rank"].astype(float)))) for _, g in group.groupby("permutation")}
            if group["permutation"].nunique() >= 2:
                stable.append(len(rankings) == 1)
        if stable:
            result["position_consistency_listwise"] = float(np.mean(stable))
    result["position_consistency"] = (result["position_consistency_pairwise"]
                                      if result["position_consistency_pairwise"] is not None
                                      else result["position_consistency_listwise"])
    if result["position_consistency"] is None:
        result["notes"].append("position consistency needs pairwise verdicts or >= 2 listwise permutations")

    if reference_ranks is not None and not listwise.empty:
        ours = listwise_scores(verdicts)
        merged = ours.merge(reference_ranks[["task", "item_id", "model", "rank"]], on=["task", "item_id", "model"])
        taus, skipped = [], 0
        for _, group in merged.groupby(["task", "item_id"]):
            if len(group) < 2 or group["value"].nunique() < 2 or group["rank"].nunique() < 2:
                skipped += 1
                continue
            tau = kendalltau(group["value"].astype(float), group["rank"].astype(float)).statistic
            if not np.isnan(tau):
                taus.append(float(tau))
            else:
                skipped += 1
        result["kendall_tau_items"] = len(taus)
        if taus:
            result["kendall_tau"] = float(np.mean(taus))
        if skipped:
            result["notes"].append(f"kendall tau: {skipped} items skipped (a constant ranking leaves tau undefined)")
    elif reference_ranks is None:
        result["notes"].append("no reference ranks given: kendall tau not computed")
    return result
