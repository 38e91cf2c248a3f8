"""The generation domain: summaries and answers per model × paper, and their job."""

import dagster as dg

from rag_pipeline import contracts
from rag_pipeline.defs.generation import assets

generation_job = dg.define_asset_job(
    "generation_job",
    selection=dg.AssetSelection.assets(*(a.name for a in (*contracts.GENERATION_ASSETS, contracts.GENERATION_METRICS))),
    description="Summaries, answers and their metrics for model × paper partitions.",
)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=assets.assets, jobs=[generation_job])
