"""The evaluation domain: metrics, labels, calibration, judgments, the leaderboard, their checks and jobs.

Re-evaluation needs no schedule: the automation re-runs what an input change made stale, and
retries what is missing or failed once a night (``defs.automation.nightly_retry``).
"""

import dagster as dg

from rag_pipeline import contracts
from rag_pipeline.defs.evaluation import assets, checks

judge_job = dg.define_asset_job(
    "judge_job", selection=dg.AssetSelection.assets(contracts.JUDGMENTS.name),
    description="The judge's verdicts over all models of a paper.",
)

# Unpartitioned, so a job of its own (a job's assets share one partitioning).
calibration_job = dg.define_asset_job(
    "judge_calibration_job",
    selection=dg.AssetSelection.assets(contracts.JUDGE_LABELS.name, contracts.JUDGE_CALIBRATION.name),
    description="Read the preference labels and calibrate the judge cascade (docs/JUDGE.md).",
)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=assets.assets, asset_checks=checks.checks, jobs=[judge_job, calibration_job])
