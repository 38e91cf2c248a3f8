"""Per-generation text metrics as rows of the ``metrics`` schema, over the metric registry.

The metrics themselves are classes in ``rag_pipeline.evaluate.metrics`` (one module per family,
with the BLEU and ROUGE conventions of the reference notebook, so its numbers reproduce exactly);
this module re-exports their functions under the names callers use.

``score_generations`` turns a frame of generations into rows of the ``metrics`` schema
(docs/ARCHITECTURE.md): one row per generation x metric, ``value`` a float or null with ``error``
saying why (a failed generation, an empty hypothesis, a missing reference, a metric exception);
never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from rag_pipeline.contracts import GENERATION_COLUMNS_FOR_SCORING, METRIC_COLUMNS
from rag_pipeline.evaluate.metrics import (
    METRICS,
    DocumentEmbedder,
    Metric,
    Sample,
    Score,
    create_metric,
    metric_class,
    metric_families,
)
from rag_pipeline.evaluate.metrics.bleu import bleu_signature, sentence_bleu
from rag_pipeline.evaluate.metrics.chrf import chrf_signature, sentence_chrf
from rag_pipeline.evaluate.metrics.cosine import cosine_signature, embedding_cosine
from rag_pipeline.evaluate.metrics.language import EXPECTED_LANGUAGE, cyrillic_share
from rag_pipeline.evaluate.metrics.latency import latency
from rag_pipeline.evaluate.metrics.length import answer_length
from rag_pipeline.evaluate.metrics.rouge import (
    ROUGE_METRICS,
    ROUGE_STATS,
    ROUGE_TYPES,
    RussianTokenizer,
    rouge,
    rouge_signature,
)
from rag_pipeline.hashing import canonical_json, content_hash

__all__ = [
    "EXPECTED_LANGUAGE", "GENERATION_COLUMNS", "METRIC_COLUMNS", "METRIC_FAMILIES", "ROUGE_METRICS", "ROUGE_STATS",
    "ROUGE_TYPES", "DocumentEmbedder", "RussianTokenizer", "Score", "answer_length", "bleu_signature",
    "chrf_signature", "cosine_signature", "cyrillic_share", "embedding_cosine", "empty_metrics_frame", "family_of",
    "latency", "resolve_metrics", "rouge", "rouge_signature", "score_generations", "sentence_bleu", "sentence_chrf",
]

# Family -> the metric names (rows) it yields, as registered (a snapshot for callers; the code reads METRICS).
METRIC_FAMILIES: dict[str, tuple[str, ...]] = metric_families()

# What scoring reads of a generation row (the columns are owned by rag_pipeline.contracts).
GENERATION_COLUMNS = GENERATION_COLUMNS_FOR_SCORING


def resolve_metrics(metrics: Iterable[str] | None, embedder: DocumentEmbedder | None) -> list[str]:
    """Metric names to compute: families or single names; default every family (cosine with an embedder)."""
    if metrics is None:
        return [name for cls in METRICS.values() if embedder is not None or not cls.needs_embedder
                for name in cls.names]
    families = metric_families()
    chosen: list[str] = []
    for name in metrics:
        if name in families:
            chosen.extend(families[name])
        elif any(name in names for names in families.values()):
            chosen.append(name)
        else:
            valid = sorted({*families, *(known for names in families.values() for known in names)})
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(valid)}")
    if embedder is None:
        for name in chosen:
            if metric_class(name).needs_embedder:
                raise ValueError(f"metric {name!r} needs an embedder (load_embedder(config['embedder']))")
    return list(dict.fromkeys(chosen))


def family_of(metric: str) -> str:
    """The family a metric name belongs to (``rougeL_fmeasure`` -> ``rouge``)."""
    return metric_class(metric).family


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


def empty_metrics_frame() -> pd.DataFrame:
    """A metrics frame with the schema's columns and no rows."""
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in METRIC_COLUMNS})
    frame["value"] = frame["value"].astype("Float64")
    return frame


def _unscorable(metric: Metric, sample: Sample, generation_error: str) -> str:
    """Why ``metric`` cannot score ``sample`` ("" when it can), from what the metric says it needs."""
    if generation_error:
        return f"generation failed: {generation_error}"
    if metric.needs_hypothesis and not sample.hypothesis.strip():
        return "empty hypothesis"
    if metric.needs_reference and (sample.reference is None or not sample.reference.strip()):
        return f"no reference for item {sample.generation['item_id']!r}"
    return ""


def _score_metric(metric: Metric, names: list[str], samples: list[Sample], generation_errors: list[str]) -> list[dict]:
    """Rows of ``names`` for every sample, in sample order: values, or nulls with the reason."""
    reasons = [_unscorable(metric, sample, error) for sample, error in zip(samples, generation_errors)]
    ready = [sample for sample, reason in zip(samples, reasons) if not reason]
    try:
        outcomes = iter(metric.score_all(ready) if ready else [])
    except Exception as exc:  # noqa: BLE001 - a batch failure fails every sample of the batch, with its reason
        outcomes = iter([exc] * len(ready))
    rows: list[dict] = []
    for sample, reason in zip(samples, reasons):
        outcome = None if reason else next(outcomes)
        if isinstance(outcome, Exception):
            reason = f"{metric.family} failed: {type(outcome).__name__}: {outcome}"
        if reason:
            rows.extend(_metric_row(sample.generation, name, None, reason, metric.failure_signature(name))
                        for name in names)
        else:
            rows.extend(_metric_row(sample.generation, name, outcome[name].value, "", outcome[name].signature)
                        for name in names)
    return rows


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
    samples = []
    for generation in records:
        reference = references.get(str(generation["item_id"]))
        samples.append(Sample(_text(generation.get("output")), None if reference is None else str(reference),
                              generation))
    generation_errors = [_text(generation.get("error")) for generation in records]

    rows: list[dict] = []
    for family in tqdm(families, desc="text metrics", disable=not progress, unit="metric"):
        metric = create_metric(family, embedder)
        names = [name for name in metric.names if name in chosen]
        rows.extend(_score_metric(metric, names, samples, generation_errors))

    if not rows:
        return empty_metrics_frame()
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    frame["value"] = pd.array([v for v in frame["value"]], dtype="Float64")
    order = {name: i for i, name in enumerate(chosen)}
    frame["_order"] = frame["metric"].map(order)
    frame = frame.sort_values(["task", "paper_id", "item_id", "model", "_order"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)
