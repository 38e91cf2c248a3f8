"""BM25 over a paper's stored chunk text: the lexical side of hybrid retrieval.

The index is built from the chunks frame each time it is needed (a few dozen chunks per paper
take milliseconds), so it holds no state of its own: the same chunks and settings always give the
same scores. BM25 itself is ``bm25s`` (sparse-matrix BM25, numpy only, Lucene's variant by
default); this module only decides what a token is.

Tokens: NFKC, lower case, runs of letters or digits (``32,768`` → ``32``, ``768``), English and
Russian stop words dropped, then — with ``stemming`` — each word stemmed by NLTK's Snowball
stemmer for its script: Russian for Cyrillic words, English for Latin ones (the same Russian
Snowball stemmer as the ROUGE tokenizer). A Russian question over an English paper therefore
matches on what both share: numbers, Latin-script names and terms (``RouteBlock``, ``BM25``),
not on translated words.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

TOKEN = re.compile(r"[^\W_]+")
CYRILLIC = re.compile(r"[а-яё]")
TOKENIZER_VERSION = "nfkc-lower-alnum-runs+stop-en-ru+snowball-by-script/v1"


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

    return frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_RUSSIAN)


@lru_cache(maxsize=2)
def _stemmer(language: str):
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer(language)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    if word.isdigit():
        return word
    return _stemmer("russian" if CYRILLIC.search(word) else "english").stem(word)


def tokenize(text: str, stemming: bool = True) -> list[str]:
    """The BM25 tokens of ``text`` (see the module docstring)."""
    words = TOKEN.findall(unicodedata.normalize("NFKC", text or "").lower())
    stop = _stopwords()
    words = [word for word in words if word not in stop]
    return [_stem(word) for word in words] if stemming else words


@dataclass
class LexicalIndex:
    """BM25 over one paper's chunks, in chunk order."""

    chunk_ids: list[str]
    k1: float = 1.5
    b: float = 0.75
    stemming: bool = True
    _bm25: object = field(default=None, repr=False)
    _vocabulary: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_chunks(
        cls, chunks: pd.DataFrame, *, k1: float = 1.5, b: float = 0.75, stemming: bool = True
    ) -> LexicalIndex:
        """Index the ``text`` of a chunks frame (one paper's rows, in their stored order)."""
        import bm25s

        # bm25s sets its logger to DEBUG on import: one "Building index" line per paper otherwise
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        missing = [column for column in ("chunk_id", "text") if column not in chunks.columns]
        if missing:
            raise ValueError(f"chunks frame lacks column(s) {missing}")
        if chunks.empty:
            raise ValueError("no chunks to index for BM25 (the chunks frame is empty)")
        corpus = [tokenize(str(text), stemming) for text in chunks["text"]]
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(corpus, show_progress=False)
        vocabulary = frozenset(token for tokens in corpus for token in tokens)
        return cls([str(c) for c in chunks["chunk_id"]], k1, b, stemming, bm25, vocabulary)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every chunk for ``question``, in chunk order (0.0: no shared term)."""
        tokens = [token for token in tokenize(question, self.stemming) if token in self._vocabulary]
        if not tokens:
            return np.zeros(len(self.chunk_ids), dtype=np.float64)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)

    def ranking(self, question: str) -> dict[str, tuple[int, float]]:
        """chunk_id → (1-based BM25 rank, score) for every chunk; ties (and zeros) in chunk order."""
        scores = self.scores(question)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return {self.chunk_ids[i]: (rank, float(scores[i])) for rank, i in enumerate(order, start=1)}

    def signature(self) -> dict:
        from rag_pipeline.model_source import package_version

        return {
            "library": f"bm25s {package_version('bm25s')}",
            "method": "lucene",
            "k1": self.k1,
            "b": self.b,
            "tokenizer": TOKENIZER_VERSION,
            "stemming": "snowball russian|english by script" if self.stemming else None,
        }
