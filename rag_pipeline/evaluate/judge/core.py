"""The judge and what every mode shares: asking with one retry, verdict rows, and ``JudgeMode``
with its registry (``@register_mode``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from rag_pipeline.cache import ContentCache
from rag_pipeline.contracts import VERDICT_COLUMNS
from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.judge.prompting import LABELS, Messages, retry_messages
from rag_pipeline.hashing import content_hash

CompleteFn = Callable[[Messages], str]


@dataclass(frozen=True)
class JudgeReply:
    """One answer of a batched call: the text, the label probabilities where the backend gives token
    log-probabilities ({"A": p, "B": p}, normalised over the labels), or the failure."""

    raw: str = ""
    probabilities: dict[str, float] | None = None
    error: str = ""


# A batch of questions in, one reply per question out (in order): the backend's own batching.
CompleteBatchFn = Callable[[list[Messages]], list[JudgeReply]]

PROMPT_VERSION = "judge-ru-v1"
ITEM_SCORE_COLUMNS = ["task", "paper_id", "item_id", "model", "metric", "value", "judge"]


@dataclass
class Judge:
    """A chat function plus what identifies it (name, model, revision, decoding) and its cache."""

    complete: CompleteFn
    name: str
    identity: dict = field(default_factory=dict)
    cache: ContentCache | None = None
    calls: int = 0  # calls that reached ``complete`` (cache misses)
    complete_batch: CompleteBatchFn | None = None  # when set, ``ask_many`` sends its misses in one batch
    batch_identity: dict = field(default_factory=dict)  # what else decides a batched reply (its token limit)

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


    def ask_many(self, questions: list[Messages], progress: bool = False) -> list[JudgeReply]:
        """Replies to many questions: cached ones from the cache, the rest in one batch (then cached).

        A failed reply is returned with its error and not cached, so a later run asks again.
        """
        keys = [ContentCache.key_for({"judge": self.identity_key(), "messages": q, "batch": self.batch_identity or True})
                for q in questions]
        replies: list[JudgeReply | None] = [None] * len(questions)
        if self.cache is not None:
            for index, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None and isinstance(hit.get("raw"), str):
                    replies[index] = JudgeReply(hit["raw"], hit.get("probabilities"))
        missing = [i for i, reply in enumerate(replies) if reply is None]
        if missing:
            self.calls += len(missing)
            if self.complete_batch is not None:
                answers = self.complete_batch([questions[i] for i in missing])
            else:
                answers = [self._one_reply(questions[i]) for i in missing]
            if len(answers) != len(missing):
                raise RuntimeError(f"judge {self.name!r} returned {len(answers)} replies for {len(missing)} questions")
            for index, answer in zip(missing, answers):
                replies[index] = answer
                if self.cache is not None and not answer.error:
                    self.cache.put(keys[index], {"raw": answer.raw, "probabilities": answer.probabilities,
                                                 "judge": self.name})
        return replies  # type: ignore[return-value]

    def _one_reply(self, messages: Messages) -> JudgeReply:
        try:
            return JudgeReply(self.complete(messages))
        except Exception as exc:  # noqa: BLE001 - a failed call is a reply with its reason
            return JudgeReply(error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Question:
    """One judge question: its messages, how to parse the answer and the required format."""

    messages: Messages
    parse: Callable[[str], object]
    required_format: str


def ask_with_retry(judge: Judge, question: Question) -> tuple[object | None, str, str]:
    """(parsed verdict or None, raw text, abstention reason). One retry on an unparseable answer."""
    try:
        raw = judge.ask(question.messages)
    except Exception as exc:  # noqa: BLE001 - any backend failure is an abstention with its reason
        return None, "", f"judge call failed: {type(exc).__name__}: {exc}"
    parsed = question.parse(raw)
    if parsed is not None:
        return parsed, raw, ""
    try:
        retry_raw = judge.ask(retry_messages(question.messages, raw, question.required_format))
    except Exception as exc:  # noqa: BLE001 - as above
        return None, raw, f"unparseable answer; retry failed: {type(exc).__name__}: {exc}"
    parsed = question.parse(retry_raw)
    if parsed is not None:
        return parsed, retry_raw, ""
    return None, f"{raw}\n---retry---\n{retry_raw}", "unparseable answer after one retry"


def verdict_row(judge: Judge, item: dict, model: str, mode: str, permutation: int, position: int, label: str,
                messages: Messages, opponent: str = "", rank=None, win=None, grade=None, reason: str = "",
                raw: str = "", confidence: float | None = None, decided_by: str | None = None,
                escalated: bool = False, escalation: str = "") -> dict:
    """One row of the verdicts schema (a ``reason`` means the judge abstained; ``decided_by``
    defaults to this judge when it did not)."""
    prompt_hash = content_hash(messages)
    return {
        "judgment_id": content_hash({"judge": judge.identity_key(), "prompt_hash": prompt_hash, "mode": mode,
                                     "item_id": item["item_id"], "model": model, "permutation": permutation,
                                     "opponent": opponent}),
        "item_id": item["item_id"], "paper_id": item["paper_id"], "task": item["task"], "model": model,
        "mode": mode, "permutation": permutation, "position": position, "label": label, "opponent": opponent,
        "rank": rank, "win": win, "grade": grade, "abstained": bool(reason), "reason": reason, "raw": raw,
        "judge": judge.name, "prompt_hash": prompt_hash, "confidence": confidence,
        "decided_by": ("" if reason else judge.name) if decided_by is None else decided_by,
        "escalated": bool(escalated), "escalation": escalation,
    }


def verdict_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Verdict rows with the fixed columns and dtypes (rank / win / grade / confidence nullable floats)."""
    frame = pd.DataFrame(list(rows), columns=list(VERDICT_COLUMNS))
    for column in ("rank", "win", "grade", "confidence"):
        frame[column] = pd.array([None if pd.isna(v) else float(v) for v in frame[column]], dtype="Float64")
    for column in ("permutation", "position"):
        frame[column] = frame[column].astype("int64")
    for column in ("abstained", "escalated"):
        frame[column] = frame[column].fillna(False).astype(bool)
    for column in ("judgment_id", "item_id", "paper_id", "task", "model", "mode", "label", "opponent", "reason",
                   "raw", "judge", "prompt_hash", "decided_by", "escalation"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


class JudgeMode:
    """One way of asking the judge: what it is shown, how its answer is read, what it scores.

    ``judge_item`` asks one question per presentation (the item's outputs in shown order, labelled
    A, B...; one retry on an unreadable answer) and writes one verdict row per shown output, with
    ``verdict_value`` in the mode's ``verdict_column``. ``item_scores`` turns the mode's verdicts
    into the per-item metric ``score_metric``, better in ``direction``.
    """

    name: ClassVar[str]  # "listwise"; the verdicts' ``mode``
    verdict_column: ClassVar[str]  # the verdicts column the mode fills: "rank", "win" or "grade"
    score_metric: ClassVar[str]  # the per-item metric it yields ("judge_rank")
    direction: ClassVar[Direction]  # of ``score_metric``
    min_models: ClassVar[int] = 1  # an item with fewer outputs is not judged in this mode
    asked_by_run_judge: ClassVar[bool] = True  # False: the mode's verdicts come from elsewhere (cascade)

    def presentations(self, models: list[str], seed_text: str,
                      n_permutations: int | None) -> list[tuple[int, list[str]]]:
        """(permutation, models in shown order) for every question asked about one item."""
        raise NotImplementedError

    def messages(self, item: dict, outputs: list[str]) -> Messages:
        """The question about ``outputs`` (in shown order) of ``item``."""
        raise NotImplementedError

    def required_format(self, labels: str) -> str:
        """The answer format, repeated in the retry."""
        raise NotImplementedError

    def parse(self, text: str, labels: str) -> object | None:
        """The verdict in the judge's answer, or None when it cannot be read."""
        raise NotImplementedError

    def verdict_value(self, verdict: object, label: str) -> float:
        """What the verdict means for the output shown under ``label``."""
        raise NotImplementedError

    def opponent(self, shown: list[str], model: str) -> str:
        """The model ``model`` was compared with in this question ("" when the mode has no pairs)."""
        return ""

    def judge_item(self, judge: Judge, item: dict, models: list[str], n_permutations: int | None) -> list[dict]:
        """Verdict rows for one item (``item["outputs"]``: model -> text)."""
        rows = []
        seed_text = f"{item['task']}|{item['item_id']}"
        for permutation, shown in self.presentations(models, seed_text, n_permutations):
            labels = LABELS[: len(shown)]
            messages = self.messages(item, [item["outputs"][model] for model in shown])
            question = Question(messages, functools.partial(self.parse, labels=labels), self.required_format(labels))
            verdict, raw, reason = ask_with_retry(judge, question)
            for position, (model, label) in enumerate(zip(shown, labels), start=1):
                value = None if verdict is None else self.verdict_value(verdict, label)
                rows.append(verdict_row(judge, item, model, self.name, permutation, position, label, messages,
                                        opponent=self.opponent(shown, model), reason=reason, raw=raw,
                                        **{self.verdict_column: value}))
        return rows

    def item_scores(self, verdicts: pd.DataFrame) -> pd.DataFrame:
        """Per item x model x judge: the mean ``verdict_column`` of the mode's non-abstained verdicts."""
        usable = verdicts[(verdicts["mode"] == self.name) & ~verdicts["abstained"]]
        if usable.empty:
            return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
        table = (usable.assign(value=usable[self.verdict_column].astype(float))
                 .groupby(["task", "paper_id", "item_id", "model", "judge"], as_index=False)["value"].mean())
        return table.assign(metric=self.score_metric)[ITEM_SCORE_COLUMNS]


# mode name -> its (stateless) instance, in registration order, which is the order of ``MODES``
JUDGE_MODES: dict[str, JudgeMode] = {}


def register_mode(cls: type[JudgeMode]) -> type[JudgeMode]:
    """Class decorator: add a judge mode (its name and score metric must be new)."""
    if not isinstance(getattr(cls, "direction", None), Direction):
        raise TypeError(f"{cls.__name__}.direction must be a Direction")
    taken = {*JUDGE_MODES, *(mode.score_metric for mode in JUDGE_MODES.values())}
    clashes = sorted(taken & {cls.name, cls.score_metric})
    if clashes:
        raise ValueError(f"judge mode {cls.__name__}: {', '.join(clashes)} already registered")
    JUDGE_MODES[cls.name] = cls()
    return cls


def judge_metric_direction(metric: str) -> Direction | None:
    """The direction of a judge-derived metric (``judge_rank``...); None for any other name."""
    for mode in JUDGE_MODES.values():
        if mode.score_metric == metric:
            return mode.direction
    return None
