"""The evaluation domain: metrics, judgments, the leaderboard, their check, job and schedule."""

import dagster as dg

from rag_pipeline import contracts
from rag_pipeline.defs.evaluation import assets, checks
from rag_pipeline.defs.partitions import PAPERS

judge_job = dg.define_asset_job(
    "judge_job", selection=dg.AssetSelection.assets(contracts.JUDGMENTS.name),
    description="The judge's verdicts over all models of a paper.",
)


@dg.schedule(cron_schedule="0 6 * * *", job=judge_job, default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_judge_schedule(context: dg.ScheduleEvaluationContext):
    """Re-evaluate every paper's judgments nightly (cached verdicts cost nothing); the leaderboard follows."""
    for paper in context.instance.get_dynamic_partitions(PAPERS.name):
        yield dg.RunRequest(partition_key=paper, run_key=f"{paper}-{context.scheduled_execution_time:%Y%m%d}")


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=assets.assets, asset_checks=checks.checks, jobs=[judge_job], schedules=[nightly_judge_schedule])
