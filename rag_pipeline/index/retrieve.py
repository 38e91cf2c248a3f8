"""Retrieve + rerank, as the notebook did: top-k chunks of the question's paper by cosine
similarity, rescored by a cross-encoder, the best top-n kept for the LLM.

The first stage follows ``RetrievalConfig.strategy``: ``dense`` (cosine order, the notebook's),
``bm25`` (BM25 over the stored chunk text, :mod:`rag_pipeline.index.lexical`; chunks sharing no
term with the question follow in cosine order) or ``hybrid`` (reciprocal rank fusion of the two
rankings over all the paper's chunks: ``dense_weight / (rrf_k + cosine rank)`` plus
``lexical_weight / (rrf_k + BM25 rank)`` for chunks with a BM25 score above 0; ties by cosine
rank). ``vector_rank``/``vector_score`` are always the cosine rank and score; ``lexical_rank``,
``lexical_score`` and ``fusion_score`` are filled where the strategy uses them (None otherwise).

Cross-language questions (``retrieval.translate_with``, :mod:`rag_pipeline.index.translate`): a
question's translation into the paper's language, when it has one, is used on the lexical side
(BM25 scores the question followed by its translation: a poor translation still keeps the
question's numbers and names) and/or on the dense side (the translation's cosine ranking is a
further ranking in the fusion, weighted ``dense_weight``; with ``strategy: dense`` the two cosine
rankings are fused). The translation is recorded in ``query_translation``.

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
    RetrievalConfig,
)
from rag_pipeline.contracts import RETRIEVAL_COLUMNS
from rag_pipeline.datasets import Question
from rag_pipeline.index.embedders import load_embedder
from rag_pipeline.index.lexical import LexicalIndex
from rag_pipeline.index.rerankers import Reranker, load_reranker
from rag_pipeline.index.vector_store import Candidate, PaperIndex, make_chroma_client

CHUNKS_FILE = "chunks.parquet"


def _check_k_n(top_k: int, top_n: int) -> None:
    for name, value in (("top_k", top_k), ("top_n", top_n)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"retrieval {name} must be a positive integer, got {value!r}")
    if top_n > top_k:
        raise ValueError(f"retrieval top_n ({top_n}) cannot exceed top_k ({top_k})")


def retrieval_signature(
    index: PaperIndex,
    reranker: Reranker | None,
    top_k: int,
    top_n: int,
    retrieval: RetrievalConfig | None = None,
    lexical: LexicalIndex | None = None,
    translation_signature: dict | None = None,
) -> dict:
    """What reproduces a retrieval: embedder and reranker signatures, collection, k and n, for
    a bm25 or hybrid first stage the strategy, its fusion settings and the BM25 signature, and
    with query translation the translating model and where its output is used."""
    signature = {
        "embedder": index.embedder.signature(),
        "reranker": reranker.signature() if reranker is not None else None,
        "collection": index.collection_name,
        "top_k": top_k,
        "top_n": top_n,
        "filter": "paper_id",
        "vector_score": "cosine similarity",
        "tie_break": "vector rank, then chunk position",
    }
    if retrieval is not None and retrieval.uses_translation:
        signature["translation"] = translation_signature or {
            "model": retrieval.translate_with,
            "max_new_tokens": retrieval.translate_max_new_tokens,
            "used_for": retrieval.translate_for,
        }
    if retrieval is not None and retrieval.strategy != "dense":
        signature["strategy"] = retrieval.strategy
        signature["lexical"] = lexical.signature() if lexical is not None else None
        if retrieval.strategy == "hybrid":
            signature["fusion"] = {
                "method": retrieval.fusion,
                "rrf_k": retrieval.rrf_k,
                "dense_weight": retrieval.dense_weight,
                "lexical_weight": retrieval.lexical_weight,
            }
    return signature


def _first_stage(
    index: PaperIndex,
    paper_id: str,
    question: str,
    top_k: int,
    retrieval: RetrievalConfig | None,
    lexical: LexicalIndex | None,
    translation: str | None = None,
) -> list[tuple[Candidate, int | None, float | None, float | None]]:
    """The top_k first-stage candidates in order, each with (lexical rank, lexical score, fusion score)."""
    strategy = retrieval.strategy if retrieval is not None else "dense"
    dense_translation = translation if translation and retrieval is not None and retrieval.translates_dense else None
    lexical_query = (
        f"{question}\n{translation}" if translation and retrieval is not None and retrieval.translates_lexical else question
    )
    if strategy == "dense" and dense_translation is None:
        return [(candidate, None, None, None) for candidate in index.query(paper_id, question, top_k)]
    if lexical is None and strategy != "dense":
        raise ValueError(f"paper {paper_id!r}: retrieval strategy {strategy!r} needs the paper's chunks (a LexicalIndex)")
    size = len(lexical) if lexical is not None else index.count(paper_id)
    dense = index.query(paper_id, question, size)  # every chunk, with its cosine rank
    translated_rank = (
        {c.chunk_id: c.rank for c in index.query(paper_id, dense_translation, size)} if dense_translation else {}
    )
    lexical_ranking = lexical.ranking(lexical_query) if strategy != "dense" else {}
    unknown = sorted(c.chunk_id for c in dense if strategy != "dense" and c.chunk_id not in lexical_ranking)
    if unknown:
        raise ValueError(
            f"paper {paper_id!r}: chunks {unknown[:3]} are in Chroma but not in the stored chunks: re-index the paper"
        )
    rows = []
    for candidate in dense:
        lexical_rank, lexical_score = lexical_ranking.get(candidate.chunk_id, (None, None))
        matched = lexical_score is not None and lexical_score > 0
        if strategy == "bm25":
            key = (0, lexical_rank) if matched else (1, candidate.rank)
            fusion = None
        else:
            fusion = retrieval.dense_weight / (retrieval.rrf_k + candidate.rank)
            if candidate.chunk_id in translated_rank:
                fusion += retrieval.dense_weight / (retrieval.rrf_k + translated_rank[candidate.chunk_id])
            if strategy == "hybrid" and matched:
                fusion += retrieval.lexical_weight / (retrieval.rrf_k + lexical_rank)
            key = (-fusion, candidate.rank)
        rows.append((key, (candidate, lexical_rank, lexical_score, fusion)))
    rows.sort(key=lambda row: row[0])
    return [row for _, row in rows[:top_k]]


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
    retrieval: RetrievalConfig | None = None,
    lexical: LexicalIndex | None = None,
    translation: str | None = None,
) -> pd.DataFrame:
    """Candidates for one question: one row per candidate in final order (``retrievals`` schema).

    The first stage follows ``retrieval.strategy`` (dense when ``retrieval`` is None; bm25 and
    hybrid need ``lexical``, the paper's :class:`LexicalIndex`); ``translation`` (the question in
    the paper's language, or None) is used as ``retrieval.translate_for`` says. Without a reranker the final
    order is the first-stage order and ``rerank_score`` is None. With one, candidates are sorted
    by rerank score, ties by first-stage order. ``kept`` marks the first ``top_n``.
    """
    _check_k_n(top_k, top_n)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question {question_id!r} of paper {paper_id!r} has no text")
    translation = translation or None
    first_stage = _first_stage(index, paper_id, question, top_k, retrieval, lexical, translation)
    candidates = [candidate for candidate, *_ in first_stage]
    rerank_scores: list[float | None] = [None] * len(candidates)
    order = list(range(len(candidates)))
    if reranker is not None:
        rerank_scores = list(reranker.score(question, [c.text for c in candidates]))
        order.sort(key=lambda i: (-rerank_scores[i], i))
    signature_json = json.dumps(
        signature or retrieval_signature(index, reranker, top_k, top_n, retrieval, lexical),
        sort_keys=True,
        ensure_ascii=False,
    )
    rows = []
    for final_rank, i in enumerate(order, start=1):
        candidate, lexical_rank, lexical_score, fusion_score = first_stage[i]
        rows.append(
            {
                "question_id": question_id,
                "paper_id": paper_id,
                "question": question,
                "query_translation": translation if retrieval is not None and retrieval.uses_translation else None,
                "chunk_id": candidate.chunk_id,
                "vector_rank": candidate.rank,
                "vector_score": candidate.score,
                "lexical_rank": lexical_rank,
                "lexical_score": lexical_score,
                "fusion_score": fusion_score,
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


def _lexical_index(paper_id: str, retrieval: RetrievalConfig | None, chunks: pd.DataFrame | None) -> LexicalIndex | None:
    if retrieval is None or retrieval.strategy == "dense":
        return None
    if chunks is None:
        raise ValueError(f"paper {paper_id!r}: retrieval strategy {retrieval.strategy!r} needs the paper's chunks")
    if "paper_id" in chunks.columns:
        chunks = chunks[chunks["paper_id"] == paper_id]
    return LexicalIndex.from_chunks(chunks, k1=retrieval.bm25_k1, b=retrieval.bm25_b, stemming=retrieval.stemming)


def retrieve_many(
    index: PaperIndex,
    reranker: Reranker | None,
    paper_id: str,
    questions: Sequence[Question],
    top_k: int = 10,
    top_n: int = 2,
    progress: bool = True,
    *,
    retrieval: RetrievalConfig | None = None,
    chunks: pd.DataFrame | None = None,
    translations: dict[str, str] | None = None,
    translation_signature: dict | None = None,
) -> pd.DataFrame:
    """``retrieve`` for every question of one paper, concatenated (empty frame for no questions).

    ``retrieval`` chooses the first stage (dense when None); bm25 and hybrid build the paper's BM25
    index from ``chunks`` (its stored chunks frame), so nothing but the chunks determines it.
    ``translations`` (question_id → the question in the paper's language; from
    :func:`rag_pipeline.index.translate.translate_questions`) are used where ``retrieval`` says.
    """
    _check_k_n(top_k, top_n)
    lexical = _lexical_index(paper_id, retrieval, chunks)
    wrong = [q.question_id for q in questions if q.paper_id != paper_id]
    if wrong:
        raise ValueError(f"paper {paper_id!r}: questions {wrong[:5]} belong to other papers")
    if not questions:
        return _empty_frame()
    signature = retrieval_signature(index, reranker, top_k, top_n, retrieval, lexical, translation_signature)
    translations = translations or {}
    frames = [
        retrieve(
            index, reranker, paper_id, q.question_id, q.text, top_k, top_n,
            signature=signature, retrieval=retrieval, lexical=lexical, translation=translations.get(q.question_id),
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
    retrieval_config: RetrievalConfig | dict | None = None,
) -> list[dict]:
    """Ask one question of a document that ``rag-pipeline ingest`` wrote to ``doc_dir``.

    Reads ``doc_dir/chunks.parquet``, indexes it into an in-memory Chroma collection (dropped
    afterwards) and returns the candidates in final order as dicts: rank, chunk_id,
    vector_score, lexical_score, fusion_score, rerank_score, kept, section, text, query_translation.
    The first stage follows ``retrieval_config`` (dense when None); with ``translate_with`` set the
    question is translated through the state directory's generation cache.
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
        retrieval = RetrievalConfig.from_dict(retrieval_config) if retrieval_config is not None else None
        translation = None
        if retrieval is not None and retrieval.uses_translation:
            from rag_pipeline.generate.runner import generation_cache
            from rag_pipeline.index.translate import translate_questions

            asked = Question("cli", paper_id, question, "")
            translation = translate_questions([asked], chunks, retrieval, cache=generation_cache()).queries.get("cli")
        frame = retrieve(
            index, reranker, paper_id, "cli", question, top_k, top_n,
            retrieval=retrieval, lexical=_lexical_index(paper_id, retrieval, chunks), translation=translation,
        )
    finally:
        index.drop()
    return [
        {
            "rank": int(row["final_rank"]),
            "chunk_id": row["chunk_id"],
            "vector_score": float(row["vector_score"]),
            "lexical_score": None if row["lexical_score"] is None else float(row["lexical_score"]),
            "fusion_score": None if row["fusion_score"] is None else float(row["fusion_score"]),
            "rerank_score": None if row["rerank_score"] is None else float(row["rerank_score"]),
            "kept": bool(row["kept"]),
            "section": row["section"],
            "text": row["text"],
            "query_translation": row["query_translation"],
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
