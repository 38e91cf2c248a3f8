"""Retrieval quality: which chunks hold a question's gold evidence, and where the retriever put them.

Relevance rule (``RELEVANCE_RULE``). Chunk text and gold quotes are first normalised the same
way: Unicode NFKC (PDF ligatures such as "ﬁ" become "fi"), lower case, markdown emphasis and
code marks (``*``, ``_``, backtick) removed, runs of whitespace collapsed to one space. Then, per
gold quote:

1. every chunk that contains the whole quote is relevant;
2. if no chunk contains it (the quote straddles a chunk boundary), every chunk that covers at
   least half of the quote's characters is relevant: the chunk ends with the quote's first part,
   starts with its last part, or lies wholly inside the quote.

A chunk is relevant when it is relevant for any quote.

Per question (``retrieval_metrics``), on the final (post-rerank) order of the candidates:
``hit@k`` (1.0 if a relevant chunk is in the first k, else 0.0), ``mrr`` (1 / rank of the first
relevant chunk, 0.0 when none was retrieved), ``ndcg@k`` with binary gains (ideal DCG from
min(k, number of relevant chunks of the paper)), ``first_relevant_rank`` (0 when no relevant
chunk was retrieved). A question whose metrics cannot be computed (no gold evidence, gold
evidence found in no chunk, no chunks or no retrievals) gets None in every metric field and
the reason in ``error``, never NaN and never a silent zero.

``relevance_mark`` carries the notebook's manual 0/1 judgement of its retriever; the summary
turns the marks into the notebook's "retriever accuracy" (94.0 % overall on its 50 questions).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

import pandas as pd

from rag_pipeline.datasets import Question
from rag_pipeline.hashing import content_hash

RELEVANCE_RULE = "contains-quote-or-covers-half-of-straddling-quote/v1"
MIN_STRADDLE_COVERAGE = 0.5
DEFAULT_KS = (1, 2, 5, 10)
EMPHASIS_MARKS = re.compile(r"[*_`]+")
WHITESPACE = re.compile(r"\s+")
NO_GOLD = "no gold evidence for this question: retrieval metrics not computable"


def normalise_for_matching(text: str) -> str:
    """Text as compared by the relevance rule: NFKC, lower case, no emphasis marks, single spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = EMPHASIS_MARKS.sub("", text)
    return WHITESPACE.sub(" ", text).strip()


def quote_coverage(chunk: str, quote: str) -> float:
    """Fraction of ``quote``'s characters that ``chunk`` holds (both already normalised).

    1.0 when the chunk contains the quote; otherwise the longest of: a prefix of the quote that
    ends the chunk, a suffix of the quote that starts the chunk, or the chunk itself when it lies
    inside the quote.
    """
    if not quote:
        return 0.0
    if quote in chunk:
        return 1.0
    length = len(quote)
    best = 0
    for size in range(length - 1, 0, -1):
        if chunk.endswith(quote[:size]):
            best = size
            break
    for size in range(length - 1, best, -1):
        if chunk.startswith(quote[length - size :]):
            best = size
            break
    if len(chunk) > best and chunk and chunk in quote:
        best = len(chunk)
    return best / length


def _chunk_texts(chunks: pd.DataFrame) -> dict[str, str]:
    missing = [c for c in ("chunk_id", "text") if c not in chunks.columns]
    if missing:
        raise ValueError(f"chunks frame lacks column(s) {missing}")
    return {
        str(cid): normalise_for_matching(str(text))
        for cid, text in zip(chunks["chunk_id"], chunks["text"])
    }


def relevant_chunk_ids(chunks: pd.DataFrame, gold_evidence: Iterable[str]) -> set[str]:
    """Ids of the chunks that hold the gold evidence, by the module's relevance rule."""
    texts = _chunk_texts(chunks)
    relevant: set[str] = set()
    for quote in (normalise_for_matching(q) for q in gold_evidence):
        if not quote:
            continue
        containing = {cid for cid, text in texts.items() if quote in text}
        if containing:
            relevant |= containing
            continue
        relevant |= {
            cid
            for cid, text in texts.items()
            if quote_coverage(text, quote) >= MIN_STRADDLE_COVERAGE
        }
    return relevant


def _dcg(relevance: Sequence[int]) -> float:
    # Binary gains: a relevant chunk at 1-based rank r adds 1 / log2(r + 1).
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(relevance, start=1))


def metric_columns(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """The metric column names for ``ks`` in output order."""
    return [f"hit@{k}" for k in ks] + ["mrr"] + [f"ndcg@{k}" for k in ks] + ["first_relevant_rank"]


def _signature(ks: Sequence[int], retrieval_signature: str | None) -> dict:
    return {
        "metric": "retrieval",
        "relevance_rule": RELEVANCE_RULE,
        "min_straddle_coverage": MIN_STRADDLE_COVERAGE,
        "ranking": "final_rank",
        "ks": list(ks),
        "gains": "binary",
        "no_relevant_retrieved": "mrr 0.0, first_relevant_rank 0",
        "retrieval": json.loads(retrieval_signature) if retrieval_signature else None,
    }


def _question_row(
    question: Question, ranked: pd.DataFrame, paper_chunks: pd.DataFrame, ks: Sequence[int]
) -> dict:
    retrieved = [str(c) for c in ranked["chunk_id"]] if not ranked.empty else []
    row: dict = {
        "question_id": question.question_id,
        "paper_id": question.paper_id,
        "collection": question.collection,
        "n_relevant": None,
        "n_retrieved": len(retrieved),
        **{column: None for column in metric_columns(ks)},
        "relevance_mark": None if question.relevance_mark is None else int(question.relevance_mark),
        "retrieved_chunk_ids": json.dumps(retrieved),
        "relevant_chunk_ids": json.dumps([]),
        "error": "",
    }
    gold = [q for q in question.gold_evidence if normalise_for_matching(q)]
    if not gold:
        row["error"] = NO_GOLD
        return row
    if paper_chunks.empty:
        row["error"] = f"no chunks for paper {question.paper_id!r}: cannot locate the gold evidence"
        return row
    relevant = relevant_chunk_ids(paper_chunks, gold)
    row["n_relevant"] = len(relevant)
    row["relevant_chunk_ids"] = json.dumps(sorted(relevant))
    if not relevant:
        row["error"] = (
            f"gold evidence of question {question.question_id!r} is in no chunk of paper "
            f"{question.paper_id!r} (text changed by cleaning or chunking?)"
        )
        return row
    if not retrieved:
        row["error"] = f"no retrievals for question {question.question_id!r}"
        return row
    gains = [1 if chunk_id in relevant else 0 for chunk_id in retrieved]
    first = next((rank for rank, gain in enumerate(gains, start=1) if gain), 0)
    for k in ks:
        row[f"hit@{k}"] = 1.0 if any(gains[:k]) else 0.0
        ideal = _dcg([1] * min(k, len(relevant)))
        row[f"ndcg@{k}"] = _dcg(gains[:k]) / ideal
    row["mrr"] = 1.0 / first if first else 0.0
    row["first_relevant_rank"] = first
    return row


def retrieval_metrics(
    retrievals: pd.DataFrame,
    chunks: pd.DataFrame,
    questions: Sequence[Question],
    ks: Sequence[int] = DEFAULT_KS,
) -> pd.DataFrame:
    """One row per question: hit@k, MRR, nDCG@k on ``final_rank``, the manual mark, ids, signature.

    ``retrievals`` follows the retrievals schema; ``chunks`` the chunks schema (the questions'
    papers). Rows whose metrics cannot be computed carry None and the reason in ``error``.
    """
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    for column in ("question_id", "chunk_id", "final_rank"):
        if not retrievals.empty and column not in retrievals.columns:
            raise ValueError(f"retrievals frame lacks column {column!r}")
    by_question = {
        str(qid): group.sort_values("final_rank")
        for qid, group in (
            retrievals.groupby("question_id", sort=False) if not retrievals.empty else []
        )
    }
    rows = []
    for question in questions:
        ranked = by_question.get(question.question_id, pd.DataFrame(columns=["chunk_id"]))
        if "paper_id" in chunks.columns:
            paper_chunks = chunks[chunks["paper_id"] == question.paper_id]
        else:
            paper_chunks = chunks
        row = _question_row(question, ranked, paper_chunks, ks)
        retrieval_sig = (
            str(ranked["signature"].iloc[0])
            if "signature" in ranked.columns and not ranked.empty
            else None
        )
        signature = _signature(ks, retrieval_sig)
        row["signature"] = json.dumps(signature, sort_keys=True, ensure_ascii=False)
        row["score_id"] = content_hash(
            [
                row["question_id"],
                row["paper_id"],
                row["retrieved_chunk_ids"],
                row["relevant_chunk_ids"],
                signature,
            ]
        )
        rows.append(row)
    columns = (
        ["score_id", "question_id", "paper_id", "collection", "n_relevant", "n_retrieved"]
        + metric_columns(ks)
        + ["relevance_mark", "retrieved_chunk_ids", "relevant_chunk_ids", "error", "signature"]
    )
    return _objects_keep_none(
        pd.DataFrame(rows, columns=columns), ["n_relevant", "relevance_mark", *metric_columns(ks)]
    )


def _objects_keep_none(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Numeric columns with gaps as nullable Float64: a gap stays <NA> (with its reason in `error`
    or `note`) through Parquet, where an object column of floats and None would come back as NaN."""
    for column in columns:
        values = [None if _is_missing(v) else float(v) for v in frame[column].tolist()]
        frame[column] = pd.array(values, dtype="Float64")
    return frame


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def summarise_retrieval_metrics(per_question: pd.DataFrame) -> pd.DataFrame:
    """Means per paper and overall, plus retriever accuracy from the manual marks.

    Columns: scope ("paper" | "overall"), paper_id ("all" overall), n_questions, n_scored (rows
    without error), each metric's mean over scored rows, n_marked, retriever_accuracy_pct
    (100 × mean manual mark), note. A mean with nothing to average is None and the note says why.
    """
    metrics = [c for c in per_question.columns if c.startswith(("hit@", "ndcg@")) or c == "mrr"]
    groups: list[tuple[str, str, pd.DataFrame]] = [
        ("paper", str(paper_id), group)
        for paper_id, group in per_question.groupby("paper_id", sort=False)
    ]
    groups.append(("overall", "all", per_question))
    rows = []
    for scope, paper_id, group in groups:
        scored = group[group["error"] == ""]
        marks = [int(m) for m in group["relevance_mark"] if not _is_missing(m)]
        row = {
            "scope": scope,
            "paper_id": paper_id,
            "n_questions": len(group),
            "n_scored": len(scored),
        }
        for metric in metrics:
            values = [float(v) for v in scored[metric] if not _is_missing(v)]
            row[metric] = sum(values) / len(values) if values else None
        row["n_marked"] = len(marks)
        # 100 * hits / count (not mean * 100) keeps 47/50 exactly 94.0
        row["retriever_accuracy_pct"] = 100.0 * sum(marks) / len(marks) if marks else None
        notes = []
        if not len(scored):
            reasons = sorted(set(group["error"]) - {""})
            notes.append(
                "no question with computable metrics"
                + (f" ({'; '.join(reasons[:3])})" if reasons else "")
            )
        if not marks:
            notes.append("no manual relevance marks")
        row["note"] = "; ".join(notes)
        rows.append(row)
    columns = [
        "scope",
        "paper_id",
        "n_questions",
        "n_scored",
        *metrics,
        "n_marked",
        "retriever_accuracy_pct",
        "note",
    ]
    return _objects_keep_none(
        pd.DataFrame(rows, columns=columns), [*metrics, "retriever_accuracy_pct"]
    )
