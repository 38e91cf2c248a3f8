"""Build the leaderboard tables and the HTML report from whatever the pipeline has stored.

Shared by the `leaderboard` asset and `rag-pipeline report` / `demo`, so both show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import StatePaths

HEADLINE_COLUMNS = ["task", "model", "metric", "mean", "ci_low", "ci_high", "n"]


@dataclass
class LeaderboardResult:
    tables: dict[str, pd.DataFrame]
    report_path: Path
    markdown: str
    json: dict = field(default_factory=dict)
    version: str = ""


def stored_generations(store: ArtifactStore) -> pd.DataFrame:
    frames = [store.read_all_frames("summaries"), store.read_all_frames("answers")]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def retrieval_table(store: ArtifactStore) -> pd.DataFrame:
    """Retrieval metrics per paper and overall (empty when nothing is stored)."""
    from rag_pipeline.evaluate.retrieval_metrics import summarise_retrieval_metrics

    per_question = store.read_all_frames("retrieval_metrics")
    if per_question.empty:
        return pd.DataFrame()
    table = summarise_retrieval_metrics(per_question)
    keep = [c for c in ("scope", "paper_id", "n_questions", "hit@1", "hit@2", "hit@10", "mrr", "ndcg@10", "retriever_accuracy_pct") if c in table.columns]
    return table[keep]


def headline_markdown(tables: dict[str, pd.DataFrame], metrics: tuple[str, ...] = ("rouge1_fmeasure", "bleu", "cosine", "judge_rank")) -> str:
    summary = tables.get("summary", pd.DataFrame())
    if summary.empty:
        return "_no metric rows stored yet_"
    shown = summary[summary["metric"].isin(metrics)] if summary["metric"].isin(metrics).any() else summary
    columns = [c for c in HEADLINE_COLUMNS + ["noise_note"] if c in shown.columns]
    return shown[columns].sort_values(["task", "metric", "model"]).to_markdown(index=False, floatfmt=".4f")


def build_all(store: ArtifactStore, paths: StatePaths, inputs: dict | None = None, out_path: Path | None = None) -> LeaderboardResult:
    """Leaderboard tables (stored as Parquet under artifacts/leaderboard/) plus the HTML report."""
    from rag_pipeline.evaluate.judge import judge_reliability
    from rag_pipeline.evaluate.leaderboard import build_leaderboard
    from rag_pipeline.evaluate.report import leaderboard_json, write_report
    from rag_pipeline.evaluate.study import notebook_judge_ranks, verify_study

    metrics = store.read_all_frames("generation_metrics")
    judgments = store.read_all_frames("judgments")
    tables = build_leaderboard(metrics, stored_generations(store), judgments if not judgments.empty else None) if not metrics.empty else {}
    retrieval = retrieval_table(store)
    if not retrieval.empty:
        tables["retrieval"] = retrieval
    reliability = judge_reliability(judgments, reference_ranks=notebook_judge_ranks()) if not judgments.empty else None
    for name, table in tables.items():
        store.write_frame("leaderboard", name, frame=table)
    if inputs is not None:
        store.write_json("leaderboard", "inputs", obj=inputs)
    report = write_report(tables, Path(out_path) if out_path else paths.reports / "report.html", study=verify_study(), reliability=reliability)
    return LeaderboardResult(
        tables=tables,
        report_path=report,
        markdown=headline_markdown(tables),
        json=leaderboard_json(tables),
        version=content_hash({name: table.astype(str).values.tolist() for name, table in sorted(tables.items())}),
    )
