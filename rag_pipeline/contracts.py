"""The stage contract, in one place: asset names, partition keys, stored files and column schemas.

Every reader and writer of a stage's output (the Dagster assets, the stage layer, the CLI's run,
lineage, reporting, checks, tests) takes names and columns from here, so renaming an asset or a
column is one edit. The core (ingest/index/generate/evaluate) builds its tables with these
column tuples; ``docs/ARCHITECTURE.md`` explains what each column means.
"""

from __future__ import annotations

from dataclasses import dataclass

# Partition dimensions. Stored paths and every (model, paper) pair use this order: model first,
# as Dagster prints a multi-partition key ("qwen2.5-coder-0.5b|demo-x").
PAPER = "paper"
MODEL = "model"
PAPER_KEYS: tuple[str, ...] = (PAPER,)
MODEL_PAPER_KEYS: tuple[str, ...] = (MODEL, PAPER)
UNPARTITIONED: tuple[str, ...] = ()

# Asset groups (the UI's boxes).
INGEST_GROUP = "ingest"
GENERATION_GROUP = "generation"
EVALUATION_GROUP = "evaluation"

CHUNK_COLUMNS = ("chunk_id", "paper_id", "index", "text", "section", "start", "end")
RETRIEVAL_COLUMNS = (
    "question_id", "paper_id", "question", "query_translation", "chunk_id", "vector_rank", "vector_score", "lexical_rank",
    "lexical_score", "fusion_score", "rerank_score", "final_rank", "kept", "text", "section", "signature",
)
GENERATION_COLUMNS = (
    "generation_id", "task", "paper_id", "item_id", "model", "backend", "model_revision", "prompt_version",
    "prompt_hash", "prompt", "decoding", "context_ids", "output", "thinking", "latency_s", "input_tokens",
    "output_tokens", "cache_hit", "error", "created_at", "notes",
)
METRIC_COLUMNS = (
    "score_id", "generation_id", "task", "paper_id", "item_id", "model", "metric", "value", "error", "signature",
)
VERDICT_COLUMNS = (
    "judgment_id", "item_id", "paper_id", "task", "model", "mode", "permutation", "position", "label",
    "opponent", "rank", "win", "grade", "abstained", "reason", "raw", "judge", "prompt_hash",
    # The guaranteed cascade (mode "cascade"): the deciding judge's confidence, which judge decided,
    # whether earlier judges passed the item on and why (docs/JUDGE.md).
    "confidence", "decided_by", "escalated", "escalation",
)
# Pairwise preference labels (data/labels/*.csv|parquet): ``preferred`` is A, B or tie;
# ``annotator_kind`` says whether a person or a reference judge (GPT-4o in the study) labelled it.
LABEL_COLUMNS = (
    "label_id", "task", "item_id", "paper_id", "context", "reference", "model_a", "output_a", "model_b",
    "output_b", "preferred", "annotator", "annotator_kind", "source",
)
# One row per cascade judge (in cascade order) and one "cascade" row for the whole.
CALIBRATION_COLUMNS = (
    "judge", "position", "confidence_method", "threshold", "alpha", "delta", "delta_judge", "n_calibration",
    "n_accepted", "errors", "p_value", "risk_bound", "calibration_coverage", "heldout_n", "heldout_decided",
    "heldout_coverage", "heldout_agreement", "ece", "auroc", "ece_logprob", "auroc_logprob", "calls", "seconds",
    "annotator_kind", "note",
)
# Every labelled pair as each judge saw it: its votes, verdict, confidence and agreement.
LABEL_VERDICT_COLUMNS = (
    "label_id", "item_id", "split", "judge", "votes", "verdict", "confidence", "logprob_confidence", "preferred",
    "agrees", "accepted", "note",
)
# What a stage reads from another's table (a subset of the owner's columns).
RETRIEVAL_COLUMNS_FOR_ANSWERS = ("question_id", "chunk_id", "final_rank", "kept", "text")
GENERATION_COLUMNS_FOR_SCORING = ("generation_id", "task", "paper_id", "item_id", "model", "output", "error")
# The leaderboard's retrieval table, per collection.
RETRIEVAL_SUMMARY_COLUMNS = (
    "scope", "paper_id", "n_questions", "hit@1", "hit@2", "hit@10", "mrr", "ndcg@10", "retriever_accuracy_pct", "note",
)


@dataclass(frozen=True)
class StageAsset:
    """One asset of the graph: its name, group, partition keys (storage order) and stored columns."""

    name: str
    group: str
    keys: tuple[str, ...]
    columns: tuple[str, ...] = ()
    # Columns whose content is the asset's data version: a change elsewhere does not re-run downstream.
    version_columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


PAPER_PDF = StageAsset("paper_pdf", INGEST_GROUP, PAPER_KEYS)
PAPER_MARKDOWN = StageAsset("paper_markdown", INGEST_GROUP, PAPER_KEYS)
PAPER_TEXT = StageAsset("paper_text", INGEST_GROUP, PAPER_KEYS)
PAPER_CHUNKS = StageAsset("paper_chunks", INGEST_GROUP, PAPER_KEYS, CHUNK_COLUMNS,
                          ("chunk_id", "text", "section", "start", "end"))
PAPER_INDEX = StageAsset("paper_index", INGEST_GROUP, PAPER_KEYS)
RETRIEVALS = StageAsset("retrievals", INGEST_GROUP, PAPER_KEYS, RETRIEVAL_COLUMNS,
                        ("question_id", "question", "chunk_id", "final_rank", "kept", "text"))
RETRIEVAL_METRICS = StageAsset("retrieval_metrics", INGEST_GROUP, PAPER_KEYS)
SUMMARIES = StageAsset("summaries", GENERATION_GROUP, MODEL_PAPER_KEYS, GENERATION_COLUMNS,
                       ("generation_id", "output", "error"))
ANSWERS = StageAsset("answers", GENERATION_GROUP, MODEL_PAPER_KEYS, GENERATION_COLUMNS,
                     ("generation_id", "output", "error"))
GENERATION_METRICS = StageAsset("generation_metrics", EVALUATION_GROUP, MODEL_PAPER_KEYS, METRIC_COLUMNS,
                                ("score_id", "value", "error"))
JUDGE_LABELS = StageAsset("judge_labels", EVALUATION_GROUP, UNPARTITIONED, LABEL_COLUMNS, LABEL_COLUMNS)
# Its data version leaves out `seconds`: wall-clock time is a measurement, not a result.
JUDGE_CALIBRATION = StageAsset("judge_calibration", EVALUATION_GROUP, UNPARTITIONED, CALIBRATION_COLUMNS,
                               tuple(c for c in CALIBRATION_COLUMNS if c != "seconds"))
JUDGMENTS = StageAsset("judgments", EVALUATION_GROUP, PAPER_KEYS, VERDICT_COLUMNS, VERDICT_COLUMNS)
LEADERBOARD = StageAsset("leaderboard", EVALUATION_GROUP, UNPARTITIONED)

INGEST_ASSETS = (PAPER_PDF, PAPER_MARKDOWN, PAPER_TEXT, PAPER_CHUNKS, PAPER_INDEX, RETRIEVALS, RETRIEVAL_METRICS)
GENERATION_ASSETS = (SUMMARIES, ANSWERS)
EVALUATION_ASSETS = (GENERATION_METRICS, JUDGE_LABELS, JUDGE_CALIBRATION, JUDGMENTS, LEADERBOARD)
ALL_ASSETS = (*INGEST_ASSETS, *GENERATION_ASSETS, *EVALUATION_ASSETS)
ASSETS_BY_NAME = {asset.name: asset for asset in ALL_ASSETS}

# Which generation asset holds a task's rows.
GENERATION_ASSET_OF_TASK = {"summary": SUMMARIES, "answer": ANSWERS}
