"""Build the leaderboard tables and the HTML report from whatever the pipeline has stored.

Shared by the `leaderboard` asset and `rag-pipeline report` / `demo`, so both show the same numbers.
Every table is computed within one collection of papers (papers.yaml's ``collection``) and
carries it as its first column: models answer different items in each collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.contracts import RETRIEVAL_SUMMARY_COLUMNS
from rag_pipeline.datasets import papers_by_id
from rag_pipeline.evaluate.judge import judge_reliability
from rag_pipeline.evaluate.leaderboard import build_leaderboard_by_collection, split_by_collection
from rag_pipeline.evaluate.report import leaderboard_json, write_report
from rag_pipeline.evaluate.retrieval_metrics import summarise_retrieval_metrics
from rag_pipeline.evaluate.study import notebook_judge_ranks, verify_study
from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import StatePaths
from rag_pipeline.stages.generation import stored_generations

STUDY_COLLECTION = "reference_study"  # papers.yaml's collection of the notebook's papers
HEADLINE_METRICS = ("rouge1_fmeasure", "bleu", "cosine", "judge_rank")


@dataclass
class LeaderboardResult:
    tables: dict[str, pd.DataFrame]
    report_path: Path
    markdown: str
    json: dict = field(default_factory=dict)
    version: str = ""
    reliability: dict[str, dict] = field(default_factory=dict)


def paper_collections() -> dict[str, str]:
    """Paper id → collection, from the paper registry (data/papers.yaml)."""
    return {paper_id: spec.collection for paper_id, spec in papers_by_id().items()}


def retrieval_table(store: ArtifactStore, collection_of: dict[str, str] | None = None) -> pd.DataFrame:
    """Retrieval metrics per paper and overall, per collection (empty when nothing is stored)."""
    per_question = store.read_all_frames(contracts.RETRIEVAL_METRICS.name)
    if per_question.empty:
        return pd.DataFrame()
    collection_of = paper_collections() if collection_of is None else collection_of
    frames = []
    for collection, group in split_by_collection(per_question, collection_of).items():
        table = summarise_retrieval_metrics(group)
        table = table[[c for c in RETRIEVAL_SUMMARY_COLUMNS if c in table.columns]].copy()
        table.insert(0, "collection", collection)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _headline_cell(row, best: str | None, n_items: int, digits: int) -> str:
    text = f"{row.mean:.{digits}f} [{row.ci_low:.{digits}f}, {row.ci_high:.{digits}f}]"
    if row.model == best:
        text += " *"
    elif bool(row.within_noise_of_best) and best is not None:
        text += " ~"
    if int(row.n) < n_items:
        text += f" (n={int(row.n)})"
    return text


def headline_markdown(tables: dict[str, pd.DataFrame], metrics: tuple[str, ...] = HEADLINE_METRICS) -> str:
    """The headline metrics as one wide markdown table per collection × task (rows = models,
    cells = mean [95% CI]); short enough for a terminal and for Dagster's metadata."""
    summary = tables.get("summary", pd.DataFrame())
    if summary.empty:
        return "_no metric rows stored yet_"
    wanted = summary["metric"].str.split("[", n=1, regex=False).str[0].isin(metrics)
    shown = summary[wanted] if wanted.any() else summary
    blocks = []
    for collection, by_collection in shown.groupby("collection", sort=True):
        blocks.append(f"### {collection}")
        for task, by_task in by_collection.groupby("task", sort=True):
            order = {m: i for i, m in enumerate(metrics)}
            columns = sorted(by_task["metric"].unique(), key=lambda m: (order.get(m.split("[", 1)[0], len(order)), m))
            n_items = by_task.groupby("model")["n"].max()
            rows = {model: {"model": model, "n": int(n)} for model, n in n_items.items()}
            for metric in columns:
                group = by_task[by_task["metric"] == metric]
                direction = group["direction"].iloc[0]
                best = None
                if direction != "descriptive" and len(group) > 1:
                    best = group.sort_values("mean", ascending=direction == "lower is better")["model"].iloc[0]
                digits = 1 if group["mean"].abs().max() >= 10 else 3  # one precision per column
                for row in group.itertuples():
                    rows[row.model][metric] = _headline_cell(row, best, rows[row.model]["n"], digits)
            table = pd.DataFrame(list(rows.values()), columns=["model", "n", *columns]).fillna("—")
            blocks.append(f"{task}:\n\n{table.to_markdown(index=False)}\n")
    blocks.append("mean [95% CI] over items; * best mean, ~ within noise of the best (paired test, Holm); "
                  "(n=…) fewer items than the model's n; judge_rank: lower is better.")
    return "\n".join(blocks)


def judge_reliability_by_collection(judgments: pd.DataFrame, collection_of: dict[str, str]) -> dict[str, dict]:
    """``judge_reliability`` per collection; Kendall τ against the notebook's GPT-4o ranks only on
    the reference study, the one collection those ranks describe."""
    return {
        collection: judge_reliability(group, reference_ranks=notebook_judge_ranks() if collection == STUDY_COLLECTION else None)
        for collection, group in split_by_collection(judgments, collection_of).items()
    }


def build_all(store: ArtifactStore, paths: StatePaths, inputs: dict | None = None, out_path: Path | None = None) -> LeaderboardResult:
    """Leaderboard tables per collection (stored as Parquet under artifacts/leaderboard/) plus the HTML report."""
    collection_of = paper_collections()
    metrics = store.read_all_frames(contracts.GENERATION_METRICS.name)
    judgments = store.read_all_frames(contracts.JUDGMENTS.name)
    tables = (build_leaderboard_by_collection(metrics, stored_generations(store), judgments if not judgments.empty else None,
                                              collection_of=collection_of)
              if not metrics.empty else {})
    retrieval = retrieval_table(store, collection_of)
    if not retrieval.empty:
        tables["retrieval"] = retrieval
    reliability = judge_reliability_by_collection(judgments, collection_of)
    for name, table in tables.items():
        store.write_frame(contracts.LEADERBOARD.name, name, frame=table)
    if inputs is not None:
        store.write_json(contracts.LEADERBOARD.name, "inputs", obj=inputs)
    report = write_report(tables, Path(out_path) if out_path else paths.reports / "report.html", study=verify_study(), reliability=reliability)
    return LeaderboardResult(
        tables=tables,
        report_path=report,
        markdown=headline_markdown(tables),
        json=leaderboard_json(tables),
        version=content_hash({name: table.astype(str).values.tolist() for name, table in sorted(tables.items())}),
        reliability=reliability,
    )
