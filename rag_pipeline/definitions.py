"""The one Dagster Definitions object (workspace.yaml points here)."""


import dagster as dg

from rag_pipeline.defs.automation import registry_sensor
from rag_pipeline.defs.checks import asset_checks
from rag_pipeline.defs.evaluation_assets import evaluation_assets, judgments
from rag_pipeline.defs.generation_assets import generation_assets
from rag_pipeline.defs.ingest_assets import ingest_assets
from rag_pipeline.defs.partitions import PAPER_MODEL, PAPERS
from rag_pipeline.defs.resources import resources_from_config

ALL_ASSETS = [*ingest_assets, *generation_assets, *evaluation_assets]

ingest_job = dg.define_asset_job(
    "ingest_job", selection=dg.AssetSelection.groups("ingest"), partitions_def=PAPERS,
    description="PDF → markdown → text → chunks → Chroma → retrievals → retrieval metrics, per paper.",
)
generation_job = dg.define_asset_job(
    "generation_job",
    selection=dg.AssetSelection.assets("summaries", "answers", "generation_metrics"),
    partitions_def=PAPER_MODEL,
    description="Summaries, answers and their metrics for model × paper partitions.",
)
judge_job = dg.define_asset_job(
    "judge_job", selection=dg.AssetSelection.assets(judgments), partitions_def=PAPERS,
    description="The judge's verdicts over all models of a paper.",
)


@dg.schedule(cron_schedule="0 6 * * *", job=judge_job, default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_judge_schedule(context: dg.ScheduleEvaluationContext):
    """Re-evaluate every paper's judgments nightly (cached verdicts cost nothing); the leaderboard follows."""
    for paper in context.instance.get_dynamic_partitions(PAPERS.name):
        yield dg.RunRequest(partition_key=paper, run_key=f"{paper}-{context.scheduled_execution_time:%Y%m%d}")


defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=asset_checks,
    jobs=[ingest_job, generation_job, judge_job],
    schedules=[nightly_judge_schedule],
    sensors=[registry_sensor],
    resources=resources_from_config(),
    # One process per run: a model loaded for the first partition serves the others (BackendPool).
    executor=dg.in_process_executor,
)
