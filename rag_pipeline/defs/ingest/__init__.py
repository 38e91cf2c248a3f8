"""The ingest domain: per-paper assets from PDF to retrieval metrics, their checks and job."""

import dagster as dg

from rag_pipeline import contracts
from rag_pipeline.defs.ingest import assets, checks

ingest_job = dg.define_asset_job(
    "ingest_job", selection=dg.AssetSelection.groups(contracts.INGEST_GROUP),
    description="PDF → markdown → text → chunks → Chroma → retrievals → retrieval metrics, per paper.",
)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=assets.assets, asset_checks=checks.checks, jobs=[ingest_job])
