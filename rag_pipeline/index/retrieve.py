"""Retrieve + rerank, as the notebook did: top-k chunks of the question's paper by cosine
similarity, rescored by a cross-encoder, the best top-n kept for the LLM.

Output rows follow the ``retrievals`` schema of docs/ARCHITECTURE.md, plus ``signature`` (JSON:
embedder, reranker, k, n) so each row says what reproduces it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from rag_pipeline.config import (
    EmbedderConfig,
    RerankerConfig,
    RetrievalConfig,  # noqa: F401  (re-exported from its old home)
)
from rag_pipeline.contracts import RETRIEVAL_COLUMNS
from rag_pipeline.datasets import Question
from rag_pipeline.index.embedders import load_embedder
from rag_pipeline.index.rerankers import Reranker, load_reranker
from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client

CHUNKS_FILE = "chunks.parquet"


def _check_k_n(top_k: int, top_n: int) -> None:
    for name, value in (("top_k", top_k), ("top_n", top_n)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"retrieval {name} must be a positive integer, got {value!r}")
    if top_n > top_k:
        raise ValueError(f"retrieval top_n ({top_n}) cannot exceed top_k ({top_k})")


def retrieval_signature(
    index: PaperIndex, reranker: Reranker | None, top_k: int, top_n: int
) -> dict:
    """What reproduces a retrieval: embedder and reranker signatures, collection, k and n."""
    return {
        "embedder": index.embedder.signature(),
        "reranker": reranker.signature() if reranker is not None else None,
        "collection": index.collection_name,
        "top_k": top_k,
        "top_n": top_n,
        "filter": "paper_id",
        "vector_score": "cosine similarity",
        "tie_break": "vector rank, then chunk position",
    }


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in RETRIEVAL_COLUMNS})


def retrieve(
    index: PaperIndex,
    reranker: Reranker | None,
    paper_id: str,
    question_id: str,
    question: str,
    top_k: int = 10,
    top_n: int = 2,
    *,
    signature: dict | None = None,
) -> pd.DataFrame:
    """Candidates for one question: one row per candidate in final order (``retrievals`` schema).

    Without a reranker the final order is the vector order and ``rerank_score`` is None. With one,
    candidates are sorted by rerank score, ties by vector rank. ``kept`` marks the first ``top_n``.
    """
    _check_k_n(top_k, top_n)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question {question_id!r} of paper {paper_id!r} has no text")
    candidates = index.query(paper_id, question, top_k)
    rerank_scores: list[float | None] = [None] * len(candidates)
    order = list(range(len(candidates)))
    if reranker is not None:
        rerank_scores = list(reranker.score(question, [c.text for c in candidates]))
        order.sort(key=lambda i: (-rerank_scores[i], candidates[i].rank))
    signature_json = json.dumps(
        signature or retrieval_signature(index, reranker, top_k, top_n),
        sort_keys=True,
        ensure_ascii=False,
    )
    rows = []
    for final_rank, i in enumerate(order, start=1):
        candidate = candidates[i]
        rows.append(
            {
                "question_id": question_id,
                "paper_id": paper_id,
                "question": question,
                "chunk_id": candidate.chunk_id,
                "vector_rank": candidate.rank,
                "vector_score": candidate.score,
                "rerank_score": rerank_scores[i],
                "final_rank": final_rank,
                "kept": final_rank <= top_n,
                "text": candidate.text,
                "section": candidate.section,
                "signature": signature_json,
            }
        )
    # rerank_score is all None or all floats per question, so pandas never turns None into NaN
    return pd.DataFrame(rows, columns=list(RETRIEVAL_COLUMNS))


def retrieve_many(
    index: PaperIndex,
    reranker: Reranker | None,
    paper_id: str,
    questions: Sequence[Question],
    top_k: int = 10,
    top_n: int = 2,
    progress: bool = True,
) -> pd.DataFrame:
    """``retrieve`` for every question of one paper, concatenated (empty frame for no questions)."""
    _check_k_n(top_k, top_n)
    wrong = [q.question_id for q in questions if q.paper_id != paper_id]
    if wrong:
        raise ValueError(f"paper {paper_id!r}: questions {wrong[:5]} belong to other papers")
    if not questions:
        return _empty_frame()
    signature = retrieval_signature(index, reranker, top_k, top_n)
    frames = [
        retrieve(
            index, reranker, paper_id, q.question_id, q.text, top_k, top_n, signature=signature
        )
        for q in tqdm(
            questions,
            desc=f"retrieve {paper_id}",
            unit="question",
            disable=not progress,
            leave=False,
        )
    ]
    return pd.concat(frames, ignore_index=True)


def retrieve_from_dir(
    doc_dir: Path,
    question: str,
    *,
    top_k: int = 10,
    top_n: int = 2,
    embedder_config: EmbedderConfig | dict | None = None,
    reranker_config: RerankerConfig | dict | None = None,
) -> list[dict]:
    """Ask one question of a document that ``rag-pipeline ingest`` wrote to ``doc_dir``.

    Reads ``doc_dir/chunks.parquet``, indexes it into an in-memory Chroma collection (dropped
    afterwards) and returns the candidates in final order as dicts: rank, chunk_id,
    vector_score, rerank_score, kept, section, text.
    """
    path = Path(doc_dir) / CHUNKS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `rag-pipeline ingest` for this document first"
        )
    chunks = pd.read_parquet(path)
    if "paper_id" in chunks.columns:
        paper_ids = sorted({str(p) for p in chunks["paper_id"]})
        if len(paper_ids) != 1:
            raise ValueError(
                f"{path}: expected the chunks of one document, found paper ids {paper_ids}"
            )
        paper_id = paper_ids[0]
    else:
        raise ValueError(f"{path}: chunks frame lacks the 'paper_id' column")
    embedder = load_embedder(embedder_config)
    reranker = load_reranker(reranker_config)
    # A unique collection: in-memory Chroma clients of one process share their collections.
    index = PaperIndex(
        make_chroma_client({"mode": "ephemeral"}),
        embedder,
        collection_prefix=f"cli-{uuid.uuid4().hex[:12]}",
    )
    try:
        index.upsert_paper(paper_id, chunks, progress=False)
        frame = retrieve(index, reranker, paper_id, "cli", question, top_k, top_n)
    finally:
        index.drop()
    return [
        {
            "rank": int(row["final_rank"]),
            "chunk_id": row["chunk_id"],
            "vector_score": float(row["vector_score"]),
            "rerank_score": None if row["rerank_score"] is None else float(row["rerank_score"]),
            "kept": bool(row["kept"]),
            "section": row["section"],
            "text": row["text"],
        }
        for row in frame.to_dict("records")
    ]


def questions_without_kept_chunk(retrievals: pd.DataFrame, question_ids: Sequence[str]) -> list[str]:
    """The ids among ``question_ids`` that have no kept candidate with text in ``retrievals``
    (in the given order): an answer to them would have no context."""
    if retrievals.empty:
        return list(question_ids)
    kept = retrievals[retrievals["kept"].astype(bool) & (retrievals["text"].fillna("").astype(str).str.strip() != "")]
    with_context = set(kept["question_id"].astype(str))
    return [question_id for question_id in question_ids if question_id not in with_context]
