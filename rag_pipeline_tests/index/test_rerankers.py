"""Rerankers: the cross-encoder and FlagReranker paths with a tiny random model loaded by path."""

from __future__ import annotations

import math

import pytest
import torch

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.index.rerankers import (
    CrossEncoderReranker,
    FlagReranker,
    RerankerConfig,
    load_reranker,
)
from rag_pipeline_tests.index.conftest import PASSAGES

QUESTION = "which optimizer was used"


def reference_logits(model_dir, query: str, texts: list[str], max_length: int = 512) -> list[float]:
    """Logits computed directly with transformers: what every reranker kind must reproduce."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    batch = tokenizer(
        [query] * len(texts),
        texts,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    with torch.no_grad():
        return model(**batch).logits.view(-1).tolist()


def test_config_parsing_and_none():
    assert RerankerConfig.from_dict(None).kind == "none"
    assert load_reranker(None) is None
    assert load_reranker({"kind": "none"}) is None
    with pytest.raises(ValueError, match=r"unknown reranker configuration key\(s\) \['top_n'\]"):
        RerankerConfig.from_dict({"kind": "flag", "top_n": 2})
    with pytest.raises(ValueError, match="unknown reranker kind 'colbert'"):
        RerankerConfig(kind="colbert")
    with pytest.raises(ValueError, match="max_length"):
        RerankerConfig(kind="flag", max_length=0)


def test_cross_encoder_scores_are_sigmoid_of_the_model_logits(tiny_cross_encoder_dir):
    reranker = load_reranker(
        {"kind": "cross-encoder", "model": str(tiny_cross_encoder_dir), "device": "cpu"}
    )
    assert isinstance(reranker, CrossEncoderReranker)
    scores = reranker.score(QUESTION, PASSAGES)
    logits = reference_logits(tiny_cross_encoder_dir, QUESTION, PASSAGES)
    assert scores == pytest.approx([1 / (1 + math.exp(-v)) for v in logits], abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores)
    assert len({round(s, 9) for s in scores}) == len(PASSAGES)  # distinct texts, distinct scores
    assert reranker.score(QUESTION, []) == []

    raw = load_reranker(
        {
            "kind": "cross-encoder",
            "model": str(tiny_cross_encoder_dir),
            "device": "cpu",
            "normalize": False,
        }
    )
    assert raw.score(QUESTION, PASSAGES) == pytest.approx(logits, abs=1e-5)

    signature = reranker.signature()
    assert signature["kind"] == "cross-encoder" and signature["normalize"] is True
    assert signature["revision"].startswith("sha256:")
    assert signature["libraries"]["sentence_transformers"] != "unknown"


def test_flag_reranker_by_path_matches_the_cross_encoder(tiny_cross_encoder_dir):
    flag = load_reranker(
        {"kind": "flag", "model": str(tiny_cross_encoder_dir), "device": "cpu", "batch_size": 4}
    )
    assert isinstance(flag, FlagReranker)
    cross = load_reranker(
        {"kind": "cross-encoder", "model": str(tiny_cross_encoder_dir), "device": "cpu"}
    )
    assert flag.score(QUESTION, PASSAGES) == pytest.approx(
        cross.score(QUESTION, PASSAGES), abs=1e-5
    )
    assert flag.score(QUESTION, PASSAGES[:1]) == pytest.approx(
        cross.score(QUESTION, PASSAGES[:1]), abs=1e-5
    )
    assert flag.signature()["libraries"]["FlagEmbedding"] != "unknown"


def test_bad_input_is_named(tiny_cross_encoder_dir):
    reranker = load_reranker(
        {"kind": "cross-encoder", "model": str(tiny_cross_encoder_dir), "device": "cpu"}
    )
    with pytest.raises(TypeError, match="not a single string"):
        reranker.score(QUESTION, "one passage")
    with pytest.raises(TypeError, match="query is NoneType"):
        reranker.score(None, PASSAGES)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["cross-encoder", "flag"])
def test_hub_id_offline_fails_with_advice(kind, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelUnavailableError, match="rag-pipeline-tests/no-such-reranker.*local directory"
    ):
        load_reranker({"kind": kind, "model": "rag-pipeline-tests/no-such-reranker"})
