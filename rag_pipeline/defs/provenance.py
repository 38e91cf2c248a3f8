"""Per-partition materializations for single-run backfills, with the provenance Dagster records.

Dagster gives every partition of a multi-partition step the same data version. Our model-loading
assets run a UI backfill as one run (each model loads once), so they report one materialization
per partition themselves, tagged exactly as Dagster tags its own: the partition's content-hash data
version, the code version and, per upstream asset, the data version and event it was built from.
Propagation then stops on an unchanged output whether a partition ran alone or in a backfill.
"""

from __future__ import annotations

from hashlib import sha256

import dagster as dg
from dagster._core.definitions.data_version import (  # the tag names Dagster's own events carry
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    extract_data_version_from_entry,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.definitions.partitions.utils.multi import get_tags_from_multi_partition_key

from rag_pipeline.defs.metadata import ui_metadata
from rag_pipeline.stages.outcome import StageOutcome


def _parent_partitions(context: dg.AssetExecutionContext, graph, parent: dg.AssetKey, partition_key) -> list[str | None]:
    if not graph.get(parent).is_partitioned:
        return [None]
    with partition_loading_context(dynamic_partitions_store=context.instance):
        result = graph.get_parent_partition_keys_for_child(partition_key, parent, context.asset_key)
    return sorted(result.partitions_subset.get_partition_keys())


def provenance_tags(context: dg.AssetExecutionContext, partition_key) -> dict[str, str]:
    """The code version and, for every upstream asset, the data version and event id read."""
    graph = context.job_def.asset_layer.asset_graph  # the run's graph (a repository is not always set)
    node = graph.get(context.asset_key)
    tags = {CODE_VERSION_TAG: node.code_version or context.run.run_id}
    for parent in sorted(node.parent_keys, key=lambda key: key.to_user_string()):
        records = [
            context.instance.get_latest_data_version_record(parent, graph.get(parent).is_external, key)
            for key in _parent_partitions(context, graph, parent, partition_key)
        ]
        records = [record for record in records if record is not None]
        versions = [extract_data_version_from_entry(record.event_log_entry) for record in records]
        values = [version.value for version in versions if version is not None]
        if len(values) == 1:
            version = values[0]
        else:  # several upstream partitions (the judge over all models): one hash, as Dagster does
            version = sha256("".join(values).encode("utf8")).hexdigest() if values else "NULL"
        tags[get_input_data_version_tag(parent)] = version
        tags[get_input_event_pointer_tag(parent)] = str(max(r.storage_id for r in records)) if records else "NULL"
    return tags


def partition_materialization(context: dg.AssetExecutionContext, partition_key, outcome: StageOutcome) -> dg.AssetMaterialization:
    """One partition's materialization event: its metadata, content-hash data version and provenance."""
    tags = {**provenance_tags(context, partition_key), DATA_VERSION_TAG: outcome.version,
            DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}
    if isinstance(partition_key, dg.MultiPartitionKey):
        tags.update(get_tags_from_multi_partition_key(partition_key))
    return dg.AssetMaterialization(
        asset_key=context.asset_key, partition=str(partition_key), metadata=ui_metadata(outcome.metadata), tags=tags,
    )
