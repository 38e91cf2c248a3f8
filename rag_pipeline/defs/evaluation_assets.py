"""Evaluation assets: per-partition metric rows, per-paper judge verdicts, the leaderboard and report."""


import dagster as dg
import pandas as pd

from rag_pipeline.datasets import load_reference_summaries, questions_for_paper
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.generation_assets import (
    BACKENDS,
    answers,
    model_spec,
    read_generations,
    summaries,
)
from rag_pipeline.defs.ingest_assets import frame_version, retrieval_metrics
from rag_pipeline.defs.partitions import BY_PAPER, PAPER_MODEL, PAPERS, materialize_each, paper_and_model
from rag_pipeline.defs.resources import EmbedderResource, JudgeResource, StateResource
from rag_pipeline.generate.registry import load_models

GROUP = "evaluation"


def references_for(paper: str) -> dict[str, str]:
    """Reference texts by item id: the paper's reference summary and each question's reference answer."""
    references = {q.question_id: q.reference_answer for q in questions_for_paper(paper)}
    summary = load_reference_summaries().get(paper)
    if summary:
        references[paper] = summary
    return references


@dg.asset(
    partitions_def=PAPER_MODEL,
    deps=[summaries, answers],
    group_name=GROUP,
    kinds={"pandas"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version="1",
    automation_condition=on_input_change(),
)
def generation_metrics(context: dg.AssetExecutionContext, state: StateResource, cosine_embedder: EmbedderResource) -> dg.MaterializeResult:
    """One row per generation × metric (BLEU, ROUGE, chrF, cosine, length, language, latency) with its signature."""
    return materialize_each(context, lambda key: score_partition(state, cosine_embedder, *paper_and_model(key)))


def score_partition(state: StateResource, cosine_embedder: EmbedderResource, paper: str, model: str) -> tuple[dict, dg.DataVersion]:
    from rag_pipeline.evaluate.text_metrics import score_generations

    store = state.store()
    generations = read_generations(store, model, paper)
    frame = score_generations(generations, references_for(paper), embedder=cosine_embedder.get()) if not generations.empty else pd.DataFrame()
    store.write_frame("generation_metrics", model, paper, frame=frame)
    metadata: dict = {"rows": len(frame), "generations": len(generations)}
    if not frame.empty:
        ok = frame[frame["error"] == ""]
        metadata["failed"] = int((frame["error"] != "").sum())
        means = ok.groupby(["task", "metric"])["value"].mean().round(4).reset_index()
        metadata["means"] = dg.MetadataValue.md(means.to_markdown(index=False))
    return metadata, frame_version(frame, ["score_id", "value", "error"])


@dg.asset(
    partitions_def=PAPERS,
    deps=[dg.AssetDep(summaries, partition_mapping=BY_PAPER), dg.AssetDep(answers, partition_mapping=BY_PAPER)],
    group_name=GROUP,
    kinds={"pytorch"},
    pool="gpu",
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version="1",
    automation_condition=on_input_change(all_inputs_required=False),
)
def judgments(context: dg.AssetExecutionContext, state: StateResource, judge: JudgeResource) -> dg.MaterializeResult:
    """The judge's verdicts over all models' outputs of a paper (anonymised, permuted; cached by content hash)."""
    return materialize_each(context, lambda paper: judge_partition(state, judge, paper))


def judge_partition(state: StateResource, judge: JudgeResource, paper: str) -> tuple[dict, dg.DataVersion]:
    from rag_pipeline.defs.judging import judge_paper

    store = state.store()
    generations = pd.concat(
        [read_generations(store, spec.name, paper) for spec in load_models()] or [pd.DataFrame()], ignore_index=True
    )
    if not judge.enabled or generations.empty:
        frame = pd.DataFrame()
        note = "judge disabled" if not judge.enabled else "no generations for this paper yet"
    else:
        frame = judge_paper(generations, paper, references_for(paper), judge, state, model_spec(judge.model), BACKENDS)
        note = ""
    store.write_frame("judgments", paper, frame=frame)
    metadata: dict = {"verdicts": len(frame), "judge": judge.model, "modes": ", ".join(judge.modes)}
    if note:
        metadata["note"] = note
    if not frame.empty and "abstained" in frame.columns:
        metadata["abstention_rate"] = round(float(frame["abstained"].mean()), 4)
    return metadata, frame_version(frame, list(frame.columns))


def input_event_ids(context: dg.AssetExecutionContext, asset_keys: list[dg.AssetKey]) -> dict[str, dict[str, int]]:
    """The latest materialization event id of every partition the leaderboard read.

    Dagster does not track staleness through an asset with >= 100 upstream partitions, so the
    leaderboard records exactly which upstream events it was built from.
    """
    instance = context.instance
    events: dict[str, dict[str, int]] = {}
    for key in asset_keys:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=10_000, ascending=False).records
        latest: dict[str, int] = {}
        for record in records:
            partition = record.partition_key or "__all__"
            latest.setdefault(partition, record.storage_id)
        events[key.to_user_string()] = dict(sorted(latest.items()))
    return events


@dg.asset(
    deps=[generation_metrics, judgments, retrieval_metrics],
    group_name=GROUP,
    kinds={"pandas", "html"},
    code_version="1",
    automation_condition=on_input_change(all_inputs_required=False),
)
def leaderboard(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Means with 95% CIs, paired tests, ranks, the notebook's final table; Parquet tables + a self-contained HTML report."""
    from rag_pipeline.reporting import build_all

    store = state.store()
    inputs = input_event_ids(context, [generation_metrics.key, judgments.key, retrieval_metrics.key])
    result = build_all(store, state.paths(), inputs)
    headline = result.tables.get("summary", pd.DataFrame())
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(result.report_path)),
            "tables": dg.MetadataValue.json({name: len(t) for name, t in result.tables.items()}),
            "models": int(headline["model"].nunique()) if "model" in headline.columns else 0,
            "leaderboard": dg.MetadataValue.md(result.markdown),
            "input_event_ids": dg.MetadataValue.json(inputs),
        },
        data_version=dg.DataVersion(result.version),
    )


evaluation_assets = [generation_metrics, judgments, leaderboard]
