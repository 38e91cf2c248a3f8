"""Stored versions ↔ Dagster materializations: which run and event wrote each version.

A stage names the version it stored in its materialization's ``artifact_version`` metadata, so
`explain` can name the run behind every step and `gc` keeps what the latest materializations use.
"""

from __future__ import annotations

import dagster as dg

from rag_pipeline.artifacts import ArtifactRef
from rag_pipeline.defs.partitions import model_paper_key

ARTIFACT_VERSION = "artifact_version"


def partition_key(keys: tuple[str, ...]) -> str | None:
    """The Dagster partition key of stored keys: (model, paper), (paper,) or () for unpartitioned."""
    if len(keys) == 2:
        return str(model_paper_key(*keys))
    return keys[0] if keys else None


def _materializations(instance: dg.DagsterInstance, asset: str, keys: tuple[str, ...], limit: int = 1000):
    records_filter = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset),
        asset_partitions=[partition_key(keys)] if keys else None,
    )
    return instance.fetch_materializations(records_filter, limit=limit, ascending=False).records


def _artifact_version(record) -> str | None:
    materialization = record.asset_materialization
    value = materialization.metadata.get(ARTIFACT_VERSION) if materialization else None
    return getattr(value, "value", value)


def materialization_of(instance: dg.DagsterInstance, ref: ArtifactRef) -> dict | None:
    """The newest materialization that wrote ``ref`` (run id, event id, time), or None."""
    for record in _materializations(instance, ref.asset, ref.keys):
        if _artifact_version(record) == ref.version:
            return {"run_id": record.run_id, "materialization": record.storage_id, "timestamp": record.timestamp}
    return None


def latest_materialized_version(instance: dg.DagsterInstance, asset: str, keys: tuple[str, ...]) -> str | None:
    """The version the latest materialization of a partition points to."""
    records = _materializations(instance, asset, keys, limit=1)
    return _artifact_version(records[0]) if records else None


def referenced_refs(instance: dg.DagsterInstance, refs: list[ArtifactRef]) -> list[ArtifactRef]:
    """For every partition among ``refs``, the version its latest materialization points to."""
    partitions = sorted({(ref.asset, ref.keys) for ref in refs})
    found = []
    for asset, keys in partitions:
        version = latest_materialized_version(instance, asset, keys)
        if version:
            found.append(ArtifactRef(asset, keys, version))
    return found
