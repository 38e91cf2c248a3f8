"""Generation requests (what to ask a model) and generation rows (what it answered).

A row has the ``generations`` columns of docs/ARCHITECTURE.md; :func:`rows_to_frame` turns rows into
the DataFrame the ``summaries`` and ``answers`` assets store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from rag_pipeline.generate.prompts import answer_messages, summary_messages

if TYPE_CHECKING:
    from rag_pipeline.datasets import Question
    from rag_pipeline.generate.registry import ModelSpec

NO_SUMMARY_INPUT = "no abstract or conclusion found"
RETRIEVAL_COLUMNS = ("question_id", "chunk_id", "final_rank", "kept", "text")


@dataclass
class GenerationRequest:
    """One item to generate: a paper summary or an answer to one question.

    ``context`` carries what non-LLM backends need (``abstract``/``conclusion`` for summaries;
    ``question``, ``chunks`` and ``chunk_ids`` for answers). ``error`` set at build time means the
    item cannot be generated (e.g. no retrieved context); it becomes a row with that reason.
    """

    task: str
    paper_id: str
    item_id: str
    messages: list[dict]
    context_ids: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    error: str = ""


@dataclass
class GenerationRow:
    """One row of the ``generations`` table (``summaries`` / ``answers`` assets)."""

    generation_id: str
    task: str
    paper_id: str
    item_id: str
    model: str
    backend: str
    model_revision: str
    prompt_version: str
    prompt_hash: str
    prompt: str
    decoding: str  # JSON
    context_ids: str  # JSON list of chunk ids
    output: str
    thinking: str
    latency_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cache_hit: bool
    error: str
    created_at: str
    notes: str = ""

    def to_dict(self) -> dict:
        """The row as a plain dict (column name → value)."""
        return asdict(self)


GENERATION_COLUMNS = [f for f in GenerationRow.__dataclass_fields__]

# Nullable dtypes: a value that was not measured is <NA> (Parquet null), never NaN.
_DTYPES = {
    "latency_s": "Float64",
    "input_tokens": "Int64",
    "output_tokens": "Int64",
    "cache_hit": "boolean",
}


def rows_to_frame(rows: list[GenerationRow]) -> pd.DataFrame:
    """Rows as a DataFrame with the ``generations`` columns in order and nullable numeric dtypes."""
    frame = pd.DataFrame([row.to_dict() for row in rows], columns=GENERATION_COLUMNS)
    for column, dtype in _DTYPES.items():
        frame[column] = frame[column].astype(dtype)
    for column in GENERATION_COLUMNS:
        if column not in _DTYPES:
            frame[column] = frame[column].astype("object")
    return frame


def summary_requests(
    spec: ModelSpec, paper_id: str, abstract: str, conclusion: str
) -> list[GenerationRequest]:
    """The one summary request of a paper for ``spec`` ([] when the model does not summarise).

    With neither an abstract nor a conclusion the request carries the error
    ``"no abstract or conclusion found"`` and becomes a failed row without calling the model
    (recorded models need no input: their outputs are looked up by paper).
    """
    if not spec.supports("summary"):
        return []
    abstract, conclusion = (abstract or "").strip(), (conclusion or "").strip()
    return [
        GenerationRequest(
            task="summary",
            paper_id=paper_id,
            item_id=paper_id,
            messages=summary_messages(spec, abstract, conclusion),
            context={"abstract": abstract, "conclusion": conclusion},
            error=""
            if (abstract or conclusion or spec.backend == "recorded")
            else f"{NO_SUMMARY_INPUT} in paper {paper_id!r}",
        )
    ]


def _kept_chunks_by_question(retrievals: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if retrievals is None or retrievals.empty:
        return {}
    missing = [column for column in RETRIEVAL_COLUMNS if column not in retrievals.columns]
    if missing:
        raise ValueError(
            f"retrievals table lacks columns {missing} (has {list(retrievals.columns)})"
        )
    kept = retrievals[retrievals["kept"].astype(bool)]
    return {
        str(question_id): group.sort_values("final_rank", kind="stable")
        for question_id, group in kept.groupby("question_id", sort=False)
    }


def answer_requests(
    spec: ModelSpec,
    paper_id: str,
    questions: list[Question],
    retrievals: pd.DataFrame | None,
) -> list[GenerationRequest]:
    """One answer request per question of ``paper_id`` ([] when the model does not answer).

    The context is the question's kept retrieval rows ordered by ``final_rank``; a question with no
    kept chunk gets a request carrying the reason, which becomes a failed row (except for recorded
    models, whose answers are looked up by question id).
    """
    if not spec.supports("answer"):
        return []
    by_question = _kept_chunks_by_question(retrievals)
    requests = []
    for question in questions:
        if question.paper_id != paper_id:
            raise ValueError(
                f"question {question.question_id!r} belongs to paper {question.paper_id!r}, not {paper_id!r}"
            )
        kept = by_question.get(question.question_id)
        chunks = [str(text) for text in kept["text"]] if kept is not None else []
        chunk_ids = [str(chunk_id) for chunk_id in kept["chunk_id"]] if kept is not None else []
        requests.append(
            GenerationRequest(
                task="answer",
                paper_id=paper_id,
                item_id=question.question_id,
                messages=answer_messages(spec, question.text, chunks),
                context_ids=chunk_ids,
                context={"question": question.text, "chunks": chunks, "chunk_ids": chunk_ids},
                error=""
                if (chunks or spec.backend == "recorded")
                else f"no retrieved context for question {question.question_id!r}",
            )
        )
    return requests


def decoding_json(spec: ModelSpec, task: str) -> str:
    """The decoding settings of a row as JSON (parameters plus max_new_tokens and thinking mode)."""
    settings: dict[str, Any] = {k: v for k, v in spec.decoding_for(task).items() if v is not None}
    if spec.backend in ("transformers", "openai"):
        settings["max_new_tokens"] = spec.max_new_tokens
        if spec.enable_thinking is not None:
            settings["enable_thinking"] = spec.enable_thinking
    if spec.backend == "extractive":
        settings.update(spec.extractive)
    return json.dumps(settings, ensure_ascii=False, sort_keys=True)
