"""The requests of one paper for one model: its summary and an answer per question."""

from __future__ import annotations

import pandas as pd

from rag_pipeline.contracts import RETRIEVAL_COLUMNS_FOR_ANSWERS
from rag_pipeline.datasets import Question
from rag_pipeline.generate.prompts import answer_messages, summary_messages
from rag_pipeline.generate.registry import ModelSpec
from rag_pipeline.generate.types import GenerationRequest

NO_SUMMARY_INPUT = "no abstract or conclusion found"


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
    missing = [column for column in RETRIEVAL_COLUMNS_FOR_ANSWERS if column not in retrievals.columns]
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
