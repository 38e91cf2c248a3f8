"""What every asset check shares: which partitions the checked run materialized.

A check runs once per run, so it covers every partition the run materialized: one for an ordinary
run, a whole range for a single-run backfill. The checks themselves live with their domain
(``defs/ingest/checks.py``, ``defs/evaluation/checks.py``).
"""

import dagster as dg


def checked_partitions(context: dg.AssetCheckExecutionContext, partitions_def) -> list[str]:
    """The partition keys the run materialized (from its tags)."""
    tags = context.run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return list(partitions_def.get_partition_keys_in_range(
            dg.PartitionKeyRange(start, end), dynamic_partitions_store=context.instance
        ))
    return []


def no_partition() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": "no partition in this run"})
