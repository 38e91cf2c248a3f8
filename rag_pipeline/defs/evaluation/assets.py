"""Evaluation assets: metric rows per model × paper, the judge's verdicts per paper, the leaderboard."""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.executors import placement
from rag_pipeline.defs.inputs.assets import input_deps
from rag_pipeline.defs.metadata import materialize_result
from rag_pipeline.defs.partitions import BY_PAPER, PAPER_MODEL, PAPERS, materialize_each, model_and_paper
from rag_pipeline.defs.resources import EmbedderResource, JudgeResource, StateResource
from rag_pipeline.generate.pool import MODEL_POOL
from rag_pipeline.stages.evaluation import (
    build_leaderboard,
    calibration_partition,
    judge_partition,
    labels_partition,
    score_partition,
)


@dg.asset(
    name=c.GENERATION_METRICS.name,
    partitions_def=PAPER_MODEL,
    deps=[c.SUMMARIES.name, c.ANSWERS.name, *input_deps(c.GENERATION_METRICS)],
    group_name=c.EVALUATION_GROUP,
    kinds={"pandas"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,  # a backfill reports one materialization per partition (materialize_each)
    code_version="1",
    automation_condition=on_input_change(own_run_after_deps=True),  # not in the generation's run
)
def generation_metrics(context: dg.AssetExecutionContext, state: StateResource, cosine_embedder: EmbedderResource):
    """One row per generation × metric (BLEU, ROUGE, chrF, cosine, length, language, latency) with its signature."""
    store, embedder = state.store(), cosine_embedder.get()
    yield from materialize_each(context, lambda key: score_partition(store, embedder, *model_and_paper(key)))


@dg.asset(
    name=c.JUDGE_LABELS.name,
    deps=input_deps(c.JUDGE_LABELS),
    group_name=c.EVALUATION_GROUP,
    kinds={"pandas"},
    code_version="1",
    automation_condition=on_input_change(),
)
def judge_labels(state: StateResource, judge: JudgeResource) -> dg.MaterializeResult:
    """Pairwise preference labels (data/labels/*.csv|parquet), validated: what calibrates the judge."""
    return materialize_result(labels_partition(state.store(), judge.section()))


@dg.asset(
    name=c.JUDGE_CALIBRATION.name,
    deps=[c.JUDGE_LABELS.name, *input_deps(c.JUDGE_CALIBRATION)],
    group_name=c.EVALUATION_GROUP,
    kinds={"pytorch"},
    **placement(pool="gpu"),  # a celery worker of the `gpu` queue
    code_version="1",
    automation_condition=on_input_change(),
)
def judge_calibration(state: StateResource, judge: JudgeResource) -> dg.MaterializeResult:
    """Each cascade judge's certified confidence threshold (risk ≤ alpha with prob. ≥ 1 − delta) and
    the cascade's coverage and agreement on held-out labels."""
    return materialize_result(calibration_partition(state.store(), judge.section(), MODEL_POOL, state.paths(),
                                                    state.judge_cache()))


@dg.asset(
    name=c.JUDGMENTS.name,
    partitions_def=PAPERS,
    deps=[*(dg.AssetDep(asset.name, partition_mapping=BY_PAPER) for asset in c.GENERATION_ASSETS),
          c.JUDGE_CALIBRATION.name, *input_deps(c.JUDGMENTS)],
    group_name=c.EVALUATION_GROUP,
    kinds={"pytorch"},
    **placement(pool="gpu"),  # a celery worker of the `gpu` queue
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,  # a backfill reports one materialization per partition (materialize_each)
    code_version="2",
    automation_condition=on_input_change(all_inputs_required=False),
)
def judgments(context: dg.AssetExecutionContext, state: StateResource, judge: JudgeResource):
    """The judge's verdicts over all models' outputs of a paper (anonymised, permuted; cached by content hash)."""
    store, paths, cache, config = state.store(), state.paths(), state.judge_cache(), judge.section()
    yield from materialize_each(context, lambda paper: judge_partition(store, config, paper, MODEL_POOL, paths, cache))


def input_event_ids(context: dg.AssetExecutionContext, asset_names: list[str]) -> dict[str, dict[str, int]]:
    """The latest materialization event id of every partition the leaderboard read.

    Dagster does not track staleness through an asset with >= 100 upstream partitions, so the
    leaderboard records exactly which upstream events it was built from.
    """
    events: dict[str, dict[str, int]] = {}
    for name in asset_names:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=10_000, ascending=False
        ).records
        latest: dict[str, int] = {}
        for record in records:
            latest.setdefault(record.partition_key or "__all__", record.storage_id)
        events[name] = dict(sorted(latest.items()))
    return events


LEADERBOARD_INPUTS = (c.GENERATION_METRICS, c.JUDGE_CALIBRATION, c.JUDGMENTS, c.RETRIEVAL_METRICS)


@dg.asset(
    name=c.LEADERBOARD.name,
    deps=[*(asset.name for asset in LEADERBOARD_INPUTS), *input_deps(c.LEADERBOARD)],
    group_name=c.EVALUATION_GROUP,
    kinds={"pandas", "html"},
    code_version="1",
    automation_condition=on_input_change(all_inputs_required=False),
)
def leaderboard(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Means with 95% CIs, paired tests, ranks, the notebook's final table; Parquet tables + a self-contained HTML report."""
    inputs = input_event_ids(context, [asset.name for asset in LEADERBOARD_INPUTS])
    _, outcome = build_leaderboard(state.store(), state.paths(), inputs)
    outcome.metadata["input_event_ids"] = dg.MetadataValue.json(inputs)
    return materialize_result(outcome)


assets = [generation_metrics, judge_labels, judge_calibration, judgments, leaderboard]
