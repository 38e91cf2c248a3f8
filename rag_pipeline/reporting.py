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
from rag_pipeline.artifacts import ArtifactRef, ArtifactStore
from rag_pipeline.contracts import RETRIEVAL_SUMMARY_COLUMNS
from rag_pipeline.datasets import load_reference_summaries, papers_by_id, questions_for_paper
from rag_pipeline.evaluate.judge import judge_reliability
from rag_pipeline.evaluate.leaderboard import build_leaderboard_by_collection, split_by_collection
from rag_pipeline.evaluate.report import leaderboard_json, write_report
from rag_pipeline.evaluate.retrieval_metrics import summarise_retrieval_metrics
from rag_pipeline.evaluate.study import notebook_judge_ranks, verify_study
from rag_pipeline.generate.registry import load_models
from rag_pipeline.hashing import content_hash
from rag_pipeline.reference_study import StudyNotRegistered
from rag_pipeline.settings import StatePaths

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
    retired: pd.DataFrame = field(default_factory=pd.DataFrame)
    artifact_version: str = ""


def paper_collections() -> dict[str, str]:
    """Paper id → collection, from the paper registry (data/papers.yaml)."""
    return {paper_id: spec.collection for paper_id, spec in papers_by_id().items()}


def retrieval_table(store: ArtifactStore, collection_of: dict[str, str] | None = None) -> pd.DataFrame:
    """Retrieval metrics per paper and overall, per collection (empty when nothing is stored)."""
    collection_of = paper_collections() if collection_of is None else collection_of
    registered = [keys for keys in store.partitions(contracts.RETRIEVAL_METRICS.name) if keys[0] in collection_of]
    per_question = store.read_all_frames(contracts.RETRIEVAL_METRICS.name, partitions=registered)
    if per_question.empty:
        return pd.DataFrame()
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


def registered_partitions(store: ArtifactStore, asset: str, models: set[str], papers: set[str]) -> list[tuple[str, ...]]:
    """The stored partitions of ``asset`` whose model and paper are both still registered."""
    keep = []
    for keys in store.partitions(asset):
        model, paper = keys if len(keys) == 2 else (None, keys[0])
        if paper in papers and (model is None or model in models):
            keep.append(keys)
    return keep


def retired_results(store: ArtifactStore, models: set[str], papers: set[str]) -> pd.DataFrame:
    """Stored results of models and papers no longer in the registries: kept on disk, never ranked."""
    rows: dict[tuple[str, str], set[str]] = {}
    for asset in (*contracts.GENERATION_ASSETS, contracts.GENERATION_METRICS, contracts.JUDGMENTS):
        for keys in store.partitions(asset.name):
            model, paper = keys if len(keys) == 2 else (None, keys[0])
            if model is not None and model not in models:
                rows.setdefault(("model", model), set()).add(asset.name)
            if paper not in papers:
                rows.setdefault(("paper", paper), set()).add(asset.name)
    return pd.DataFrame(
        [{"kind": kind, "id": key, "stored": ", ".join(sorted(assets))} for (kind, key), assets in sorted(rows.items())],
        columns=["kind", "id", "stored"],
    )


def study_verification() -> pd.DataFrame | None:
    """The notebook's numbers beside ours, or None when the study's papers are not all registered."""
    try:
        return verify_study()
    except StudyNotRegistered:
        return None


SIDE_BY_SIDE_CHARS = 1200  # an output's or reference's share of the self-contained report
CHUNK_CHARS = 300


def _clip(text, limit: int) -> str:
    text = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return text if len(text) <= limit else text[:limit] + " […]"


def side_by_side(generations: pd.DataFrame, metrics: pd.DataFrame, judgments: pd.DataFrame,
                 retrievals: pd.DataFrame) -> pd.DataFrame:
    """One row per item × model for the report's side-by-side view: the question (or paper), the
    reference, the output, the chunks kept for it, every metric and the judge's verdicts.

    ``disagreement`` marks items where the judge's best model (cascade win rate on covered pairs,
    else listwise rank) is not the best by cosine similarity.
    """
    columns = ["paper_id", "task", "item_id", "context", "reference", "model", "output", "chunks", "metrics",
               "verdict", "disagreement"]
    if generations.empty:
        return pd.DataFrame(columns=columns)
    papers = sorted(set(generations["paper_id"]))
    registry = papers_by_id()
    context, reference = {}, {}
    summaries = load_reference_summaries()
    for paper in papers:
        for question in questions_for_paper(paper):
            context[question.question_id], reference[question.question_id] = question.text, question.reference_answer
        context[paper] = registry[paper].title if paper in registry else paper
        reference[paper] = summaries.get(paper, "")
    kept: dict[str, str] = {}
    if not retrievals.empty:
        for question, group in retrievals[retrievals["kept"].astype(bool)].groupby("question_id"):
            kept[str(question)] = "\n---\n".join(_clip(t, CHUNK_CHARS) for t in group.sort_values("final_rank")["text"])
    values: dict[tuple[str, str], dict[str, float]] = {}
    if not metrics.empty:
        ok = metrics[metrics["error"] == ""]
        for row in ok.itertuples():
            values.setdefault((str(row.item_id), row.model), {})[row.metric] = float(row.value)
    verdicts: dict[tuple[str, str], list[str]] = {}
    judged: dict[tuple[str, str], float] = {}
    if judgments is not None and not judgments.empty:
        for (item, model, mode), group in judgments.groupby(["item_id", "model", "mode"]):
            decided = group[~group["abstained"]]
            if mode == "cascade":
                if decided.empty:
                    verdicts.setdefault((item, model), []).append(f"каскад: воздержался ({len(group)} пар)")
                    continue
                rate = float(decided["win"].astype(float).mean())
                judged[(item, model)] = rate
                who = ", ".join(sorted(set(decided["decided_by"])))
                confidence = float(decided["confidence"].astype(float).mean())
                verdicts.setdefault((item, model), []).append(
                    f"каскад: доля побед {rate:.2f} в {len(decided)} из {len(group)} пар, уверенность {confidence:.2f}, решил {who}")
            elif mode == "listwise" and not decided.empty:
                rank = float(decided["rank"].astype(float).mean())
                judged.setdefault((item, model), -rank)
                verdicts.setdefault((item, model), []).append(f"listwise: средний ранг {rank:.2f} (судья {group['judge'].iloc[0]})")
    rows = []
    for (task, item), group in generations.groupby(["task", "item_id"], sort=True):
        item = str(item)
        models = sorted(group["model"])
        by_judge = {m: judged[(item, m)] for m in models if (item, m) in judged}
        by_cosine = {m: values[(item, m)]["cosine"] for m in models if "cosine" in values.get((item, m), {})}
        disagreement = bool(by_judge and by_cosine and max(by_judge, key=by_judge.get) != max(by_cosine, key=by_cosine.get))
        for row in group.sort_values("model").itertuples():
            shown = values.get((item, row.model), {})
            rows.append({
                "paper_id": row.paper_id, "task": task, "item_id": item, "context": context.get(item, ""),
                "reference": _clip(reference.get(item, ""), SIDE_BY_SIDE_CHARS), "model": row.model,
                "output": _clip(row.output if not row.error else f"ошибка: {row.error}", SIDE_BY_SIDE_CHARS),
                "chunks": kept.get(item, "") if task == "answer" else "",
                "metrics": " · ".join(f"{k} {v:.3f}" for k, v in sorted(shown.items())),
                "verdict": "; ".join(verdicts.get((item, row.model), [])) or "судья не оценивал",
                "disagreement": disagreement,
            })
    return pd.DataFrame(rows, columns=columns)


def build_all(
    store: ArtifactStore, paths: StatePaths, inputs: dict | None = None, out_path: Path | None = None, record: bool = True
) -> LeaderboardResult:
    """Leaderboard tables per collection plus the HTML report; ``record`` stores them as a new version
    of the ``leaderboard`` asset (what its materialization does; `report` only writes the HTML).

    Only registered models and papers are ranked; stored results of retired ones are listed apart.
    """
    collection_of = paper_collections()
    models, papers = {spec.name for spec in load_models()}, set(collection_of)
    read: list[ArtifactRef] = []

    def current(asset: str) -> pd.DataFrame:
        frames = []
        for keys in registered_partitions(store, asset, models, papers):
            ref = store.current_ref(asset, *keys)
            read.append(ref)
            frames.append(store.read_frame(asset, *keys, version=ref.version))
        frames = [frame for frame in frames if not frame.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    metrics = current(contracts.GENERATION_METRICS.name)
    judgments = current(contracts.JUDGMENTS.name)
    retrievals = current(contracts.RETRIEVALS.name)
    calibration = pd.DataFrame()
    if store.current_version(contracts.JUDGE_CALIBRATION.name):
        ref = store.current_ref(contracts.JUDGE_CALIBRATION.name)
        read.append(ref)
        calibration = store.read_frame(contracts.JUDGE_CALIBRATION.name, version=ref.version)
    generations = pd.concat([current(asset.name) for asset in contracts.GENERATION_ASSETS], ignore_index=True)
    tables = (build_leaderboard_by_collection(metrics, generations, judgments if not judgments.empty else None,
                                              collection_of=collection_of)
              if not metrics.empty else {})
    retrieval = retrieval_table(store, collection_of)
    if not retrieval.empty:
        tables["retrieval"] = retrieval
    retired = retired_results(store, models, papers)
    reliability = judge_reliability_by_collection(judgments, collection_of)
    artifact_version = ""
    if record:
        with store.writing(contracts.LEADERBOARD.name) as out:
            for ref in read:
                out.record_input(ref)
            for name, table in tables.items():
                out.write_frame(table, name=name)
            out.write_frame(retired, name="retired")
            out.write_frame(calibration, name="judge_guarantee")
            if inputs is not None:
                out.write_json(inputs, name="inputs")
        artifact_version = out.version
    items = side_by_side(generations, metrics, judgments, retrievals)
    report = write_report(tables, Path(out_path) if out_path else paths.reports / "report.html", study=study_verification(),
                          reliability=reliability, retired=retired, guarantee=calibration, items=items)
    return LeaderboardResult(
        tables=tables,
        report_path=report,
        markdown=headline_markdown(tables),
        json=leaderboard_json(tables),
        version=content_hash({name: table.astype(str).values.tolist() for name, table in sorted(tables.items())}),
        reliability=reliability,
        retired=retired,
        artifact_version=artifact_version,
    )
